"""The client of an artifacts service: ``http(s)://.../mlflow-artifacts/artifacts/...`` and
``mlflow-artifacts:`` URIs, registered as the built-in ``http`` plugin."""

from ._plugin import ArtifactsServiceClient

__all__ = ["ArtifactsServiceClient", "plugin"]

#: The instance the ``http`` entry point registers.
plugin = ArtifactsServiceClient()
