"""Audiences: every customer of a canonical event table scored in batch (`signals score`), into the
customers file and one file per audience that an activation layer imports.

The scores are the endpoint's (serving.engine.SignalsEngine, framework-free), so a customer's batch
answer equals /predict's for the same events and as_of. May import events, models, registry and
serving's framework-free modules; never serving.service (BentoML) nor training.
"""
