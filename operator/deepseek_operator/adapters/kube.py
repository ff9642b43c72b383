"""Writes to the Kubernetes API: server-side apply of the rendered objects, the status, deletes,
and the peering object. Reads come from the kopf indexes (`adapters.observe`), never from here.

Every write is server-side apply with the field manager `deepseek-operator` and `force`, so the
operator owns exactly the fields it renders: a user's own label on a Deployment survives, a
user's `kubectl scale` is taken back at the next apply. Apply has no resourceVersion
precondition, so it cannot fail with 409 on our own fields; a 409 from anything else (a delete
racing a re-create) makes the reconcile look again at once. The blocking client runs in a
thread with request timeouts, so a frozen API server slows a reconcile but never hangs it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from deepseek_operator.api.base import GROUP, VERSION
from deepseek_operator.api.deployment import PLURAL as DEPLOYMENT_PLURAL
from deepseek_operator.api.pool import PLURAL as POOL_PLURAL

FIELD_MANAGER = "deepseek-operator"
APPLY = "application/apply-patch+yaml"
REQUEST_TIMEOUT = (5.0, 20.0)
"""(connect, read) seconds for every request."""
PEERING_GROUP = "kopf.dev"
PEERING_VERSION = "v1"


class Conflict(Exception):
    """The API server answered 409: look again before acting."""


class PeeringNotInstalled(Exception):
    """Operators cannot peer: the peering CRDs are missing from the cluster."""


@dataclass
class KubeWriter:
    """The API calls the operator makes, each in a worker thread."""

    api: client.ApiClient
    calls: int = 0
    """API requests made so far (every write, whatever its outcome)."""

    @classmethod
    def from_environment(cls) -> KubeWriter:
        """In a pod: the service account; elsewhere: $KUBECONFIG or ~/.kube/config."""
        configuration = client.Configuration()
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        else:
            # $KUBECONFIG as it is now: the client reads it only once, when first imported
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
            )
        configuration.retries = 0  # the reconcile loop is the retry
        return cls(client.ApiClient(configuration))

    async def apply(self, manifest: Mapping[str, Any]) -> None:
        """Server-side apply of one namespaced object (Deployment or Service)."""
        await asyncio.to_thread(self._apply, dict(manifest))

    async def apply_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Server-side apply of a DeepSeekDeployment's status subresource."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "DeepSeekDeployment",
            "metadata": {"name": name, "namespace": namespace},
            "status": dict(status),
        }
        await asyncio.to_thread(
            self._call,
            client.CustomObjectsApi(self.api).patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            DEPLOYMENT_PLURAL,
            name,
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
        )

    async def apply_pool_status(self, name: str, status: Mapping[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PoolProfile",
            "metadata": {"name": name},
            "status": dict(status),
        }
        await asyncio.to_thread(
            self._call,
            client.CustomObjectsApi(self.api).patch_cluster_custom_object_status,
            GROUP,
            VERSION,
            POOL_PLURAL,
            name,
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
        )

    async def delete_deployment(self, namespace: str, name: str, uid: str | None = None) -> None:
        """Delete a pool Deployment (absent already is fine)."""
        options = client.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=uid) if uid else None,
        )
        try:
            await asyncio.to_thread(
                self._call,
                client.AppsV1Api(self.api).delete_namespaced_deployment,
                name,
                namespace,
                body=options,
            )
        except ApiException as error:
            if error.status != 404:
                raise

    async def ensure_peering(self, name: str) -> None:
        """Create the cluster-wide peering object the operators meet in, if it is missing."""
        body = {
            "apiVersion": f"{PEERING_GROUP}/{PEERING_VERSION}",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name},
        }
        try:
            await asyncio.to_thread(
                self._call,
                client.CustomObjectsApi(self.api).create_cluster_custom_object,
                PEERING_GROUP,
                PEERING_VERSION,
                "clusterkopfpeerings",
                body,
            )
        except Conflict:
            return  # already there
        except ApiException as error:
            if error.status == 404:
                raise PeeringNotInstalled(
                    "the ClusterKopfPeering kind is not installed: apply crds/ (it holds "
                    "kopf.dev_peerings.yaml), or run a single operator with --standalone"
                ) from None
            raise

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    # -----------------------------------------------------------------------------------------

    def _apply(self, manifest: dict[str, Any]) -> None:
        kind = manifest["kind"]
        metadata = manifest["metadata"]
        name, namespace = metadata["name"], metadata["namespace"]
        method: Any
        if kind == "Deployment":
            method = client.AppsV1Api(self.api).patch_namespaced_deployment
        elif kind == "Service":
            method = client.CoreV1Api(self.api).patch_namespaced_service
        else:
            raise ValueError(f"cannot apply {kind}")
        self._call(
            method,
            name,
            namespace,
            manifest,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY,
        )

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        try:
            return method(*args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
        except ApiException as error:
            if error.status == 409:
                raise Conflict(str(error.reason)) from error
            raise
