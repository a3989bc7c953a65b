"""The artifacts service: MLflow's ``mlflow-artifacts`` REST API in front of any backend.

``mlartifacts server`` runs it under uvicorn; :func:`create_app` builds the ASGI
app (for tests, or to mount it in another application).
"""

from ._app import create_app
from ._auth import hash_password
from ._config import ServerConfig
from ._run import run

__all__ = ["ServerConfig", "create_app", "hash_password", "run"]
