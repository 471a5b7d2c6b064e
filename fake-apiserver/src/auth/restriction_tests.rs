//! Tests of NodeRestriction, after upstream's admission_test.go.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;
use crate::auth::user::NODES_GROUP;

#[derive(Default)]
struct Store {
    pods: HashMap<(String, String), Value>,
    nodes: HashMap<String, Value>,
}

impl ObjectLookup for Store {
    fn pod(&self, namespace: &str, name: &str) -> Option<Value> {
        self.pods.get(&(namespace.to_string(), name.to_string())).cloned()
    }
    fn node(&self, name: &str) -> Option<Value> {
        self.nodes.get(name).cloned()
    }
}

fn store() -> Store {
    let mut s = Store::default();
    for (name, node, uid) in
        [("mypod", "mynode", "pod-uid"), ("otherpod", "othernode", "other-uid"), ("unbound", "", "u")]
    {
        s.pods.insert(
            ("ns".into(), name.into()),
            json!({"metadata": {"name": name, "namespace": "ns", "uid": uid}, "spec": {"nodeName": node}}),
        );
    }
    s.nodes.insert("mynode".into(), json!({"metadata": {"name": "mynode", "uid": "node-uid"}}));
    s
}

fn mynode() -> User {
    User::new("system:node:mynode", &[NODES_GROUP])
}

struct Req {
    user: User,
    op: Operation,
    group: &'static str,
    resource: &'static str,
    sub: &'static str,
    ns: &'static str,
    name: &'static str,
    obj: Option<Value>,
    old: Option<Value>,
}

fn req(op: Operation, resource: &'static str, sub: &'static str, ns: &'static str, name: &'static str) -> Req {
    Req { user: mynode(), op, group: "", resource, sub, ns, name, obj: None, old: None }
}

impl Req {
    fn group(self, group: &'static str) -> Req {
        Req { group, ..self }
    }
    fn obj(self, obj: Value) -> Req {
        Req { obj: Some(obj), ..self }
    }
    fn old(self, old: Value) -> Req {
        Req { old: Some(old), ..self }
    }
    fn run(&self) -> Result<(), AdmissionError> {
        let r = AdmissionRequest {
            user: &self.user,
            operation: self.op,
            api_group: self.group,
            resource: self.resource,
            subresource: self.sub,
            namespace: self.ns,
            name: self.name,
            object: self.obj.as_ref(),
            old_object: self.old.as_ref(),
        };
        admit(&r, &store())
    }
    /// The full error message, or "" when admitted.
    fn message(&self) -> String {
        self.run().err().map(|e| e.to_string()).unwrap_or_default()
    }
}

fn mirror_pod(node: &str) -> Value {
    json!({"metadata": {"name": "mirror", "namespace": "ns", "annotations": {"kubernetes.io/config.mirror": "hash"},
                        "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": "node-uid", "controller": true}]},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}})
}

fn with(mut v: Value, pointer: &str, value: Value) -> Value {
    if let Some(slot) = v.pointer_mut(pointer) {
        *slot = value;
    }
    v
}

#[test]
fn non_nodes_are_not_restricted() {
    let mut r = req(Operation::Delete, "nodes", "", "", "othernode");
    r.user = User::new("alice", &[NODES_GROUP]);
    assert_eq!(r.run(), Ok(()));
    r.user = User::new("system:node:", &[NODES_GROUP]);
    assert_eq!(r.message(), r#"nodes "Unknown" is forbidden: could not determine node from user "system:node:""#);
}

#[test]
fn mirror_pod_create() {
    let create = |pod: Value| req(Operation::Create, "pods", "", "ns", "").obj(pod).message();
    assert_eq!(create(mirror_pod("mynode")), "");
    let plain = with(mirror_pod("mynode"), "/metadata/annotations", json!({}));
    assert_eq!(
        create(plain),
        r#"pods "mirror" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "mynode" can only create mirror pods"#
    );
    let other = with(mirror_pod("mynode"), "/spec/nodeName", json!("othernode"));
    assert_eq!(
        create(other),
        r#"pods "mirror" is forbidden: node "mynode" can only create pods with spec.nodeName set to itself"#
    );
    let cases = [
        (
            "/metadata/ownerReferences",
            json!([]),
            "node \"mynode\" can only create pods with an owner reference set to itself",
        ),
        (
            "/metadata/ownerReferences/0/kind",
            json!("Pod"),
            "node \"mynode\" can only create pods with an owner reference set to itself",
        ),
        (
            "/metadata/ownerReferences/0/controller",
            json!(false),
            "node \"mynode\" can only create pods with a controller owner reference set to itself",
        ),
        ("/metadata/ownerReferences/0/uid", json!("stale"), "node mynode UID mismatch: expected stale got node-uid"),
        (
            "/spec/serviceAccountName",
            json!("default"),
            "node \"mynode\" can not create pods that reference a service account",
        ),
        (
            "/spec/imagePullSecrets",
            json!([{"name": "s"}]),
            "node \"mynode\" can not create pods that reference secrets",
        ),
        (
            "/spec/containers/0/envFrom",
            json!([{"configMapRef": {"name": "c"}}]),
            "node \"mynode\" can not create pods that reference configmaps",
        ),
        (
            "/spec/volumes",
            json!([{"name": "v", "projected": {"sources": [{"clusterTrustBundle": {"name": "b"}}]}}]),
            "node \"mynode\" can not create pods that reference clustertrustbundles",
        ),
        (
            "/spec/volumes",
            json!([{"name": "v", "persistentVolumeClaim": {"claimName": "c"}}]),
            "node \"mynode\" can not create pods that reference persistentvolumeclaims",
        ),
    ];
    for (pointer, value, detail) in cases {
        let mut pod = mirror_pod("mynode");
        let parent = pointer.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
        let key = pointer.rsplit('/').next().unwrap_or("");
        if let Some(Value::Object(m)) = pod.pointer_mut(parent) {
            m.insert(key.into(), value);
        } else {
            pod = with(pod, pointer, value);
        }
        assert_eq!(create(pod), format!("pods \"mirror\" is forbidden: {detail}"), "{pointer}");
    }
    let mut two_owners = mirror_pod("mynode");
    two_owners["metadata"]["ownerReferences"] = json!([{}, {}]);
    assert!(create(two_owners).contains("can only create pods with a single owner reference set to itself"));
    let mut blocking = mirror_pod("mynode");
    blocking["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = json!(true);
    assert!(create(blocking).ends_with("node \"mynode\" must not set blockOwnerDeletion on an owner reference"));
    assert_eq!(
        req(Operation::Create, "pods", "", "ns", "").message(),
        r#"pods "Unknown" is forbidden: unexpected type <nil>"#
    );
}

#[test]
fn mirror_pod_of_missing_node_is_not_found() {
    let mut r = req(Operation::Create, "pods", "", "ns", "").obj(mirror_pod("mynode"));
    r.user = User::new("system:node:ghost", &[NODES_GROUP]);
    r.obj = Some(with(mirror_pod("ghost"), "/metadata/ownerReferences/0/name", json!("ghost")));
    let err = r.run().unwrap_err();
    assert_eq!(err.to_string(), r#"node "ghost" not found"#);
    assert_eq!(err.code(), 404);
}

#[test]
fn pod_delete_update_and_subresources() {
    assert_eq!(req(Operation::Delete, "pods", "", "ns", "mypod").message(), "");
    assert_eq!(
        req(Operation::Delete, "pods", "", "ns", "otherpod").message(),
        r#"pods "Unknown" is forbidden: node "mynode" can only delete pods with spec.nodeName set to itself"#
    );
    assert_eq!(req(Operation::Delete, "pods", "", "ns", "gone").message(), r#"pod "gone" not found"#);
    let update = req(Operation::Update, "pods", "", "ns", "mypod").obj(json!({"metadata": {"name": "mypod"}}));
    assert_eq!(
        update.message(),
        r#"pods "mypod" is forbidden: unexpected operation "UPDATE", node "mynode" can only create and delete mirror pods"#
    );
    assert_eq!(
        req(Operation::Update, "pods", "ephemeralcontainers", "ns", "mypod").message(),
        r#"pods "Unknown" is forbidden: unexpected pod subresource "ephemeralcontainers", only 'status' and 'eviction' are allowed"#
    );
}

#[test]
fn pod_status() {
    let pod = |node: &str| json!({"metadata": {"name": "p", "labels": {"a": "b"}}, "spec": {"nodeName": node}, "status": {"phase": "Running"}});
    let status =
        |old: Value, new: Value| req(Operation::Update, "pods", "status", "ns", "p").old(old).obj(new).message();
    assert_eq!(status(pod("mynode"), pod("mynode")), "");
    assert_eq!(
        status(pod("othernode"), pod("othernode")),
        r#"pods "p" is forbidden: node "mynode" can only update pod status for pods with spec.nodeName set to itself"#
    );
    assert_eq!(
        status(pod("mynode"), with(pod("mynode"), "/metadata/labels", json!({"a": "c"}))),
        r#"pods "p" is forbidden: node "mynode" cannot update labels through pod status"#
    );
    let claims =
        with(pod("mynode"), "/status", json!({"resourceClaimStatuses": [{"name": "x", "resourceClaimName": "y"}]}));
    assert_eq!(
        status(pod("mynode"), claims),
        r#"pods "p" is forbidden: node "mynode" cannot update resource claim statues"#
    );
    let no_labels = with(pod("mynode"), "/metadata/labels", json!({}));
    let null_labels = with(pod("mynode"), "/metadata/labels", Value::Null);
    assert_eq!(status(no_labels, null_labels), "", "nil and empty labels are equal");
    assert_eq!(
        req(Operation::Create, "pods", "status", "ns", "p").message(),
        r#"pods "Unknown" is forbidden: unexpected operation "CREATE""#
    );
}

#[test]
fn pod_eviction() {
    let eviction = |name: &str| json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "ns"}});
    assert_eq!(req(Operation::Create, "pods", "eviction", "ns", "mypod").obj(eviction("mypod")).message(), "");
    assert_eq!(req(Operation::Create, "pods", "eviction", "ns", "").obj(eviction("mypod")).message(), "");
    assert_eq!(
        req(Operation::Create, "pods", "eviction", "ns", "otherpod").obj(eviction("otherpod")).message(),
        r#"pods "otherpod" is forbidden: node mynode can only evict pods with spec.nodeName set to itself"#
    );
    assert_eq!(
        req(Operation::Create, "pods", "eviction", "ns", "").obj(json!({"metadata": {}})).message(),
        r#"pods "Unknown" is forbidden: could not determine pod from request data"#
    );
    assert_eq!(
        req(Operation::Create, "pods", "eviction", "ns", "nope").obj(eviction("nope")).message(),
        r#"pod "nope" not found"#
    );
    assert_eq!(
        req(Operation::Delete, "pods", "eviction", "ns", "mypod").message(),
        r#"pods "Unknown" is forbidden: unexpected operation DELETE"#
    );
}

fn node_obj(name: &str, labels: Value, taints: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
}

#[test]
fn node_create_and_update() {
    let create = |obj: Value| req(Operation::Create, "nodes", "", "", "").obj(obj).message();
    let ok_labels = json!({"kubernetes.io/hostname": "mynode", "kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "x",
                           "kubelet.kubernetes.io/foo": "1", "sub.node.kubernetes.io/bar": "2", "example.com/x": "y"});
    assert_eq!(create(node_obj("mynode", ok_labels.clone(), json!([]))), "");
    assert_eq!(
        create(node_obj("othernode", json!({}), json!([]))),
        r#"nodes "othernode" is forbidden: node "mynode" is not allowed to modify node "othernode""#
    );
    let bad = json!({"node-role.kubernetes.io/worker": "", "node-restriction.kubernetes.io/x": "", "foo.k8s.io/y": "", "a.node-restriction.kubernetes.io/z": ""});
    assert_eq!(
        create(node_obj("mynode", bad, json!([]))),
        r#"nodes "mynode" is forbidden: node "mynode" is not allowed to set the following labels: a.node-restriction.kubernetes.io/z, foo.k8s.io/y, node-restriction.kubernetes.io/x, node-role.kubernetes.io/worker"#
    );
    let with_source =
        with(node_obj("mynode", json!({}), json!([])), "/spec", json!({"configSource": {"configMap": {}}}));
    assert!(create(with_source).ends_with("node \"mynode\" is not allowed to create pods with a non-nil configSource"));

    let taint = json!([{"key": "k", "effect": "NoSchedule"}]);
    let update = |old: Value, new: Value| req(Operation::Update, "nodes", "", "", "mynode").old(old).obj(new).message();
    let base = node_obj("mynode", ok_labels.clone(), taint.clone());
    assert_eq!(update(base.clone(), base.clone()), "");
    assert_eq!(
        update(base.clone(), node_obj("mynode", ok_labels.clone(), json!([]))),
        r#"nodes "mynode" is forbidden: node "mynode" is not allowed to modify taints"#
    );
    let mut relabeled = base.clone();
    relabeled["metadata"]["labels"]["node-role.kubernetes.io/worker"] = json!("");
    relabeled["metadata"]["labels"]["kubernetes.io/hostname"] = json!("changed-is-allowed");
    assert_eq!(
        update(base.clone(), relabeled),
        r#"nodes "mynode" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/worker"#
    );
    let mut removed = base.clone();
    removed["metadata"]["labels"] = json!({});
    assert_eq!(
        update(node_obj("mynode", json!({"x.k8s.io/a": "1"}), taint.clone()), removed),
        r#"nodes "mynode" is forbidden: is not allowed to modify labels: x.k8s.io/a"#
    );
    let untainted = node_obj("mynode", json!({}), Value::Null);
    assert_eq!(
        update(untainted.clone(), node_obj("mynode", json!({}), json!([]))),
        "",
        "nil and empty taints are equal"
    );
    let status = req(Operation::Update, "nodes", "status", "", "othernode").old(untainted.clone()).obj(untainted);
    assert_eq!(
        status.message(),
        r#"nodes "mynode" is forbidden: node "mynode" is not allowed to modify node "othernode""#
    );
    assert_eq!(req(Operation::Delete, "nodes", "", "", "mynode").message(), "");
}

#[test]
fn pvc_status() {
    let pvc = json!({"metadata": {"name": "c", "resourceVersion": "1"}, "spec": {"resources": {}}, "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
    let status = |new: Value| {
        req(Operation::Update, "persistentvolumeclaims", "status", "ns", "c").old(pvc.clone()).obj(new).message()
    };
    let mut resized = pvc.clone();
    resized["status"]["capacity"]["storage"] = json!("2Gi");
    resized["status"]["conditions"] = json!([{"type": "Resizing"}]);
    resized["metadata"]["resourceVersion"] = json!("2");
    assert_eq!(status(resized), "");
    let mut relabeled = pvc.clone();
    relabeled["metadata"]["labels"] = json!({"a": "b"});
    assert_eq!(
        status(relabeled),
        r#"persistentvolumeclaims "c" is forbidden: node "mynode" is not allowed to update fields other than status.quantity and status.conditions: .metadata.labels"#
    );
    assert_eq!(
        req(Operation::Update, "persistentvolumeclaims", "", "ns", "c").message(),
        r#"persistentvolumeclaims "Unknown" is forbidden: may only update PVC status"#
    );
}

#[test]
fn service_account_tokens() {
    let tr = |bound: Value| json!({"kind": "TokenRequest", "spec": {"audiences": ["x"], "boundObjectRef": bound}});
    let token =
        |bound: Value| req(Operation::Create, "serviceaccounts", "token", "ns", "default").obj(tr(bound)).message();
    let bound = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid});
    assert_eq!(token(bound("mypod", "pod-uid")), "");
    let prefix = r#"serviceaccounts "Unknown" is forbidden: "#;
    assert_eq!(token(Value::Null), format!("{prefix}node requested token not bound to a pod"));
    assert_eq!(
        token(json!({"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u"})),
        format!("{prefix}node requested token not bound to a pod")
    );
    assert_eq!(token(bound("mypod", "")), format!("{prefix}node requested token with a pod binding without a uid"));
    assert_eq!(token(bound("gone", "u")), r#"pod "gone" not found"#);
    assert_eq!(
        token(bound("mypod", "old")),
        format!(
            "{prefix}the UID in the bound object reference (old) does not match the UID in record. The object might have been deleted and then recreated"
        )
    );
    assert_eq!(
        token(bound("otherpod", "other-uid")),
        format!("{prefix}node requested token bound to a pod scheduled on a different node")
    );
    assert_eq!(
        req(Operation::Create, "serviceaccounts", "", "ns", "").message(),
        "",
        "only token requests are restricted"
    );
}

#[test]
fn leases_csinodes_and_slices() {
    let lease = |op, ns: &'static str, name: &'static str, obj: Value| {
        req(op, "leases", "", ns, name).group("coordination.k8s.io").obj(obj).message()
    };
    assert_eq!(lease(Operation::Create, "kube-node-lease", "", json!({"metadata": {"name": "mynode"}})), "");
    assert_eq!(lease(Operation::Update, "kube-node-lease", "mynode", json!({"metadata": {"name": "mynode"}})), "");
    assert_eq!(
        lease(Operation::Create, "kube-node-lease", "", json!({"metadata": {"name": "othernode"}})),
        r#"leases.coordination.k8s.io "othernode" is forbidden: can only access node lease with the same name as the requesting node"#
    );
    assert_eq!(
        lease(Operation::Update, "default", "mynode", json!({"metadata": {"name": "mynode"}})),
        r#"leases.coordination.k8s.io "mynode" is forbidden: can only access leases in the "kube-node-lease" system namespace"#
    );
    let csi = |op, name: &'static str, obj: Option<Value>| {
        let mut r = req(op, "csinodes", "", "", name).group("storage.k8s.io");
        r.obj = obj;
        r.message()
    };
    assert_eq!(csi(Operation::Create, "", Some(json!({"metadata": {"name": "mynode"}}))), "");
    assert!(
        csi(Operation::Create, "", Some(json!({"metadata": {"name": "x"}})))
            .ends_with("can only access CSINode with the same name as the requesting node")
    );
    assert!(csi(Operation::Create, "", None).ends_with("unable to access the object name"));
    assert!(
        csi(Operation::Delete, "x", None)
            .ends_with("can only access CSINode with the same name as the requesting node")
    );
    let slice = |op, obj: Value| {
        let r = req(op, "resourceslices", "", "", "s").group("resource.k8s.io");
        if op == Operation::Delete { r.old(obj).message() } else { r.obj(obj).message() }
    };
    assert_eq!(slice(Operation::Create, json!({"spec": {"nodeName": "mynode"}})), "");
    assert!(
        slice(Operation::Create, json!({"spec": {"nodeName": "x"}}))
            .ends_with("can only create ResourceSlice with the same NodeName as the requesting node")
    );
    assert!(
        slice(Operation::Delete, json!({"spec": {"nodeName": "x"}}))
            .ends_with("can only delete ResourceSlice with the same NodeName as the requesting node")
    );
    assert_eq!(slice(Operation::Update, json!({"spec": {"nodeName": "x"}})), "");
}

fn csr_pem(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, cn);
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[test]
fn kubelet_csrs_name_the_node() {
    let csr = |signer: &str, pem: &str| {
        use base64::Engine;
        let request = base64::engine::general_purpose::STANDARD.encode(pem);
        let obj = json!({"metadata": {"name": "csr-1"}, "spec": {"signerName": signer, "request": request}});
        req(Operation::Create, "certificatesigningrequests", "", "", "").group("certificates.k8s.io").obj(obj).message()
    };
    let client = "kubernetes.io/kube-apiserver-client-kubelet";
    assert_eq!(csr(client, &csr_pem("system:node:mynode")), "");
    assert_eq!(
        csr("kubernetes.io/kubelet-serving", &csr_pem("system:node:othernode")),
        r#"certificatesigningrequests.certificates.k8s.io "csr-1" is forbidden: can only create a node CSR with CN=system:node:mynode"#
    );
    assert_eq!(csr("example.com/other", &csr_pem("anything")), "");
    assert!(csr(client, "garbage").ends_with("unable to parse csr: PEM block type must be CERTIFICATE REQUEST"));
}

#[test]
fn status_bodies() {
    let err = req(Operation::Delete, "pods", "", "ns", "otherpod").run().unwrap_err();
    let s = err.status();
    assert_eq!(s["code"], 403);
    assert_eq!(s["details"], json!({"name": "Unknown", "kind": "pods"}));
    assert_eq!(s["message"], err.to_string());
    let nf = req(Operation::Delete, "pods", "", "ns", "gone").run().unwrap_err().status();
    assert_eq!(nf["details"], json!({"name": "gone", "kind": "pod"}));
}
