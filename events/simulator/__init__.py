"""The shopper simulator: the project's embedded default data, with the true answers (oracles) to the
three tasks alongside the events. `signals simulate` is its command line."""
from events.simulator.config import SimulatorConfig, load_simulator_config
from events.simulator.simulation import simulate

__all__ = ["SimulatorConfig", "load_simulator_config", "simulate"]
