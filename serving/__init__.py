"""The BentoML service that answers the activation layer's real-time requests."""
