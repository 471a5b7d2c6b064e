"""Drives the API server with the official Kubernetes Python client (Debian's python3-kubernetes).

argv: the admin kubeconfig, a kubeconfig of a user without bindings. Prints one JSON object with
what the client got; any exception the client raises fails the run (exit 1).
"""
import json
import sys

from kubernetes import client, config
from kubernetes.client.rest import ApiException


def main(admin_kubeconfig, nobody_kubeconfig):
    out = {}
    admin = config.new_client_from_config(config_file=admin_kubeconfig)
    out["version"] = client.VersionApi(admin).get_code().git_version
    core = client.CoreV1Api(admin)
    out["namespaces"] = sorted(n.metadata.name for n in core.list_namespace().items)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="py", labels={"app": "py"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="img")]),
    )
    created = core.create_namespaced_pod("default", pod)
    out["created"] = [created.metadata.name, created.spec.service_account_name, created.status.phase]
    patched = core.patch_namespaced_pod("py", "default", {"metadata": {"labels": {"patched": "yes"}}})
    out["labels"] = patched.metadata.labels
    listed = core.list_namespaced_pod("default", label_selector="app=py")
    out["listed"] = [p.metadata.name for p in listed.items]
    rbac = client.RbacAuthorizationV1Api(admin)
    rbac.create_namespaced_role("default", client.V1Role(
        metadata=client.V1ObjectMeta(name="py-reader"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"], verbs=["get"])],
    ))
    out["roles"] = [r.metadata.name for r in rbac.list_namespaced_role("default").items]
    review = client.AuthorizationV1Api(admin).create_self_subject_access_review(client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=client.V1ResourceAttributes(
            verb="delete", resource="secrets", namespace="kube-system"))))
    out["admin_may_delete_secrets"] = review.status.allowed
    core.delete_namespaced_pod("py", "default", grace_period_seconds=0)
    nobody = client.CoreV1Api(config.new_client_from_config(config_file=nobody_kubeconfig))
    try:
        nobody.list_namespaced_pod("default")
        out["nobody"] = "allowed"
    except ApiException as e:
        out["nobody"] = [e.status, json.loads(e.body)["message"]]
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
