"""The file MLflow runs to build the pyfunc model (models from code): it names the class, nothing more."""
import mlflow
from mlflow.pyfunc import PythonModel

from audiences.pyfunc import SignalsModel


class LoggedSignalsModel(SignalsModel, PythonModel):
    pass


mlflow.models.set_model(LoggedSignalsModel())
