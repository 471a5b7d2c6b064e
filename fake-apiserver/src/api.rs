//! The resource registry: create, update, patch, delete, binding and eviction semantics on top of the store.

use std::sync::Arc;

use parking_lot::Mutex;
use rand::Rng;
use serde_json::{Value, json};

use crate::admission::{self, Write};
use crate::alloc::Allocator;
use crate::apply;
use crate::auth::restriction::Operation;
use crate::defaults;
use crate::error::{ApiError, ApiResult, success_status};
use crate::patch::{self, PatchType};
use crate::resources::{self, ResourceId};
use crate::store::{Change, Obj, Store};
use crate::validation;

/// Options of a delete call.
#[derive(Debug, Default, Clone)]
pub struct DeleteOpts {
    pub grace_period_seconds: Option<i64>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub propagation_policy: Option<String>,
    /// Compute the result without storing it (dryRun=All).
    pub dry_run: bool,
}

impl DeleteOpts {
    /// Parse a DeleteOptions body (may be empty) merged with query parameters.
    pub fn from_body(body: Option<&Value>) -> ApiResult<DeleteOpts> {
        let mut o = DeleteOpts::default();
        if let Some(b) = body {
            if !b.is_object() && !b.is_null() {
                return Err(ApiError::bad_request("DeleteOptions must be an object"));
            }
            o.grace_period_seconds = b.get("gracePeriodSeconds").and_then(Value::as_i64);
            o.uid = b.pointer("/preconditions/uid").and_then(Value::as_str).map(str::to_string);
            o.resource_version = b.pointer("/preconditions/resourceVersion").and_then(Value::as_str).map(str::to_string);
            o.propagation_policy = b.get("propagationPolicy").and_then(Value::as_str).map(str::to_string);
            o.dry_run = b.get("dryRun").and_then(Value::as_array).is_some_and(|d| d.iter().any(|x| x == "All"));
            if o.propagation_policy.is_none() && b.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                o.propagation_policy = Some("Orphan".into());
            }
        }
        Ok(o)
    }
}

/// Result of a delete: the object as returned to the client and whether it is gone.
#[derive(Debug)]
pub struct Deleted {
    pub obj: Arc<Obj>,
    pub gone: bool,
}

/// The registry shared by HTTP handlers and controllers.
pub struct Api {
    pub store: Arc<Store>,
    alloc: Mutex<Allocator>,
    /// DefaultTolerationSeconds admission: (not-ready, unreachable) seconds.
    default_tolerations: (i64, i64),
    /// ServiceAccount admission of new pods: `None` off, `Some(inject)` on, injecting the
    /// `kube-api-access-*` volume when `inject` (a root CA is published for it to carry).
    service_account_admission: Option<bool>,
}

pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Second).map(|t| t.to_string()).unwrap_or_default()
}

pub fn now_micro() -> String {
    jiff::Timestamp::now().round(jiff::Unit::Microsecond).map(|t| t.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()).unwrap_or_default()
}

/// A random (version 4) UUID, as object uids are.
pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Random suffix as upstream generateName uses.
pub fn random_suffix(n: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = rand::rng();
    (0..n).map(|_| ALPHABET[r.random_range(0..ALPHABET.len())] as char).collect()
}

/// Set `keys` inside `v` to `val`, turning non-object intermediate values into objects.
pub fn set_in(v: &mut Value, keys: &[&str], val: Value) {
    let mut cur = v;
    for (i, k) in keys.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let Some(m) = cur.as_object_mut() else { return };
        if i + 1 == keys.len() {
            m.insert((*k).to_string(), val);
            return;
        }
        cur = m.entry((*k).to_string()).or_insert_with(|| json!({}));
    }
}

fn meta_str<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str)
}

fn spec_part(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    c
}

fn without_rv(v: &Value) -> Value {
    let mut c = v.clone();
    if let Some(m) = c.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    c
}

/// Admission of an update about to be stored (`new` replaces `old`).
fn admit_update(res: ResourceId, ns: &str, name: &str, new: &Value, old: &Value) -> ApiResult<()> {
    admission::admit(&Write { res, operation: Operation::Update, namespace: ns, name, object: Some(new), old_object: Some(old) })
}

fn has_finalizers(v: &Value) -> bool {
    v.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

/// Check apiVersion/kind of a body against the resource, filling them in when absent.
pub fn check_type(res: ResourceId, body: &mut Value) -> ApiResult<()> {
    let desc = res.desc();
    let Some(m) = body.as_object_mut() else {
        return Err(ApiError::bad_request("the body of the request must be a JSON or YAML object"));
    };
    let av = desc.api_version();
    match m.get("apiVersion") {
        None | Some(Value::Null) => {
            m.insert("apiVersion".into(), json!(av));
        }
        Some(Value::String(s)) if *s == av => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({}) does not match the expected API version ({av})",
                other.as_str().unwrap_or(&other.to_string())
            )));
        }
    }
    match m.get("kind") {
        None | Some(Value::Null) => {
            m.insert("kind".into(), json!(desc.kind));
        }
        Some(Value::String(s)) if s == desc.kind => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "{} in version {:?} cannot be handled as a {}: no kind {other} is registered for version {av:?}",
                other.as_str().unwrap_or(""),
                desc.version,
                desc.kind
            )));
        }
    }
    match m.get("metadata") {
        None | Some(Value::Null) => {
            m.insert("metadata".into(), json!({}));
        }
        Some(Value::Object(_)) => {}
        Some(_) => return Err(ApiError::bad_request("metadata must be an object")),
    }
    Ok(())
}

impl Api {
    pub fn new(store: Arc<Store>, service_cidr: &str) -> Option<Api> {
        Some(Api { store, alloc: Mutex::new(Allocator::new(service_cidr)?), default_tolerations: (300, 300), service_account_admission: None })
    }

    /// Turns the ServiceAccount admission plugin on for new pods; `inject` adds the
    /// `kube-api-access-*` volume (see [`crate::sa_admission`]).
    pub fn with_service_account_admission(mut self, on: bool, inject: bool) -> Api {
        self.service_account_admission = on.then_some(inject);
        self
    }

    /// The tolerationSeconds DefaultTolerationSeconds admission gives new pods for the
    /// `not-ready` and `unreachable` NoExecute taints (300 s each by default).
    pub fn with_default_tolerations(mut self, not_ready: i64, unreachable: i64) -> Api {
        self.default_tolerations = (not_ready, unreachable);
        self
    }

    fn ensure_namespace(&self, res: ResourceId, ns: &str) -> ApiResult<()> {
        if !res.desc().namespaced {
            return Ok(());
        }
        match self.store.get(resources::NAMESPACES, "", ns) {
            None => Err(ApiError::not_found("", "namespaces", ns)),
            Some(n) if n.value.pointer("/metadata/deletionTimestamp").is_some() => Err(ApiError::forbidden(format!(
                "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                res.desc().plural,
                meta_str(&n.value, "name").unwrap_or("")
            ))),
            Some(_) => Ok(()),
        }
    }

    fn alloc_for(&self, dry: bool, svc: &mut Value, old: Option<&Value>) -> ApiResult<()> {
        if dry { self.alloc.lock().clone().allocate(svc, old) } else { self.alloc.lock().allocate(svc, old) }
    }

    fn release_for(&self, dry: bool, svc: &Value) {
        if !dry {
            self.alloc.lock().release(svc);
        }
    }

    /// Create an object in namespace `ns` ("" for cluster-scoped).
    pub fn create(&self, res: ResourceId, ns: &str, body: Value) -> ApiResult<Arc<Obj>> {
        self.create_with(res, ns, body, false)
    }

    /// [`Api::create`] with dry-run control.
    pub fn create_with(&self, res: ResourceId, ns: &str, mut body: Value, dry: bool) -> ApiResult<Arc<Obj>> {
        let desc = res.desc();
        check_type(res, &mut body)?;
        {
            let meta = body.get_mut("metadata").and_then(Value::as_object_mut).ok_or_else(|| ApiError::bad_request("metadata must be an object"))?;
            if desc.namespaced {
                match meta.get("namespace").and_then(Value::as_str) {
                    Some(b) if !b.is_empty() && b != ns => {
                        return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
                    }
                    _ => {
                        meta.insert("namespace".into(), json!(ns));
                    }
                }
            } else {
                meta.remove("namespace");
            }
            let name = meta.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty()
                && let Some(g) = meta.get("generateName").and_then(Value::as_str).filter(|g| !g.is_empty())
            {
                let mut base = g.to_string();
                base.truncate(58);
                meta.insert("name".into(), json!(format!("{base}{}", random_suffix(5))));
            }
            meta.remove("resourceVersion");
            meta.remove("deletionTimestamp");
            meta.remove("deletionGracePeriodSeconds");
            meta.insert("uid".into(), json!(new_uid()));
            meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
            if desc.generation {
                meta.insert("generation".into(), json!(1));
            } else {
                meta.remove("generation");
            }
        }
        match res {
            resources::PODS => {
                if let Some(o) = body.as_object_mut() {
                    o.remove("status");
                }
            }
            resources::SERVICES => {
                if let Some(o) = body.as_object_mut() {
                    o.remove("status");
                }
            }
            _ => {}
        }
        defaults::apply_defaults(res, &mut body);
        if res == resources::PODS {
            defaults::default_toleration_seconds(&mut body, self.default_tolerations);
            if let Some(inject) = self.service_account_admission {
                self.admit_service_account(ns, &mut body, inject)?;
            }
            self.admit_runtime_class(&mut body)?;
        }
        let name = meta_str(&body, "name").unwrap_or("").to_string();
        admission::admit(&Write { res, operation: Operation::Create, namespace: ns, name: &name, object: Some(&body), old_object: None })?;
        validation::validate_create(res, &body)?;
        self.ensure_namespace(res, ns)?;
        let out = self.store.mutate_with(res, ns, &name, dry, |cur| {
            if cur.is_some() {
                return Err(ApiError::already_exists(desc.group, desc.plural, &name));
            }
            if res == resources::SERVICES {
                self.alloc_for(dry, &mut body, None)?;
            }
            Ok(Change::Put(body))
        })?;
        if res == resources::NAMESPACES && !dry {
            let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
            let _ = self.create(resources::SERVICEACCOUNTS, &name, sa);
        }
        Ok(out.obj)
    }

    /// The ServiceAccount admission plugin on a new pod (the account looked up here, before the
    /// store is locked for the write).
    fn admit_service_account(&self, ns: &str, pod: &mut Value, inject: bool) -> ApiResult<()> {
        let sa = crate::sa_admission::default_account(pod);
        let account = sa.and_then(|sa| self.store.get(resources::SERVICEACCOUNTS, ns, &sa)).map(|o| o.value.clone());
        crate::sa_admission::admit_pod(pod, ns, account.as_ref(), &random_suffix(5), inject)
    }

    /// The RuntimeClass admission plugin on a new pod (every pod: one that sets an overhead
    /// without a class defining it is refused too); the class is looked up here, before the
    /// store is locked for the write.
    fn admit_runtime_class(&self, pod: &mut Value) -> ApiResult<()> {
        let class = crate::runtimeclass_admission::class_name(pod);
        let found = class.as_deref().and_then(|c| self.store.get(resources::RUNTIMECLASSES, "", c)).map(|o| o.value.clone());
        crate::runtimeclass_admission::admit_pod(pod, class.as_deref(), found.as_ref())
    }

    /// Turn a full new object into the stored form relative to `cur` (update semantics).
    fn prepare_update(&self, res: ResourceId, cur: &Value, mut new: Value, sub: Option<&str>) -> ApiResult<Value> {
        let desc = res.desc();
        check_type(res, &mut new)?;
        let name = meta_str(cur, "name").unwrap_or("").to_string();
        if let Some(n) = meta_str(&new, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!("the name of the object ({n}) does not match the name on the URL ({name})")));
        }
        if let Some(rv) = meta_str(&new, "resourceVersion")
            && !rv.is_empty()
            && Some(rv) != meta_str(cur, "resourceVersion")
        {
            return Err(ApiError::conflict(desc.group, desc.plural, &name, "the object has been modified; please apply your changes to the latest version and try again"));
        }
        if let Some(ns) = meta_str(&new, "namespace")
            && !ns.is_empty()
            && Some(ns) != meta_str(cur, "namespace")
        {
            return Err(ApiError::bad_request("the namespace of the provided object does not match the namespace sent on the request"));
        }
        let mut out = if sub == Some("status") {
            let mut o = cur.clone();
            o["status"] = new.get("status").cloned().unwrap_or_else(|| json!({}));
            o
        } else {
            if desc.has_status()
                && let Some(o) = new.as_object_mut()
            {
                match cur.get("status") {
                    Some(s) => o.insert("status".into(), s.clone()),
                    None => o.remove("status"),
                };
            }
            new
        };
        if let (Some(m), Some(cm)) = (out.get_mut("metadata").and_then(Value::as_object_mut), cur.get("metadata").and_then(Value::as_object)) {
            for k in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation", "namespace", "name"] {
                match cm.get(k) {
                    Some(v) => m.insert(k.into(), v.clone()),
                    None => m.remove(k),
                };
            }
            if !m.contains_key("managedFields")
                && let Some(mf) = cm.get("managedFields")
            {
                m.insert("managedFields".into(), mf.clone());
            }
        }
        if desc.generation && spec_part(&out) != spec_part(cur) {
            let g = cur.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1) + 1;
            out["metadata"]["generation"] = json!(g);
        }
        // A Secret's write-only stringData is folded into data on every write, updates and
        // patches too (upstream's conversion), so `kubectl patch -p '{"stringData": …}'` works.
        if [resources::PODS, resources::SERVICES, resources::REPLICASETS, resources::DEPLOYMENTS, resources::DAEMONSETS, resources::ROLEBINDINGS, resources::CLUSTERROLEBINDINGS, resources::SECRETS].contains(&res) {
            defaults::apply_defaults(res, &mut out);
        }
        validation::validate_update(res, cur, &out)?;
        Ok(out)
    }

    fn finish_write(&self, res: ResourceId, cur: &Arc<Obj>, mut new: Value, dry: bool) -> ApiResult<Change> {
        if res == resources::SERVICES {
            self.alloc_for(dry, &mut new, Some(&cur.value))?;
        }
        if without_rv(&new) == without_rv(&cur.value) {
            return Ok(Change::Keep);
        }
        if new.pointer("/metadata/deletionTimestamp").is_some() && !has_finalizers(&new) {
            let graceful_pod = res == resources::PODS
                && new.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64).unwrap_or(0) > 0;
            if !graceful_pod {
                if res == resources::SERVICES {
                    self.release_for(dry, &cur.value);
                }
                return Ok(Change::Delete);
            }
        }
        Ok(Change::Put(new))
    }

    /// Replace an object (PUT), or its status when `sub` is Some("status").
    pub fn update(&self, res: ResourceId, ns: &str, name: &str, body: Value, sub: Option<&str>) -> ApiResult<Arc<Obj>> {
        self.update_with(res, ns, name, body, sub, false)
    }

    /// [`Api::update`] with dry-run control.
    pub fn update_with(&self, res: ResourceId, ns: &str, name: &str, body: Value, sub: Option<&str>, dry: bool) -> ApiResult<Arc<Obj>> {
        let desc = res.desc();
        let mut create_instead = false;
        let out = self.store.mutate_with(res, ns, name, dry, |cur| {
            let Some(cur) = cur else {
                if sub.is_none() && matches!(res, resources::LEASES | resources::EVENTS | resources::ENDPOINTS | resources::RUNTIMECLASSES) {
                    create_instead = true;
                    return Ok(Change::Keep);
                }
                return Err(ApiError::not_found(desc.group, desc.plural, name));
            };
            if res == resources::RUNTIMECLASSES {
                crate::runtime_classes::check_conditional_update(&body, name)?;
            }
            let new = self.prepare_update(res, &cur.value, body.clone(), sub)?;
            admit_update(res, ns, name, &new, &cur.value)?;
            self.finish_write(res, cur, new, dry)
        });
        if create_instead {
            return self.create_with(res, ns, body, dry);
        }
        Ok(out?.obj)
    }

    /// Patch an object; apply patches create it when absent.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        res: ResourceId,
        ns: &str,
        name: &str,
        pt: PatchType,
        body: &[u8],
        sub: Option<&str>,
        field_manager: Option<&str>,
    ) -> ApiResult<Arc<Obj>> {
        self.patch_with(res, ns, name, pt, body, sub, field_manager, false, false, None, &mut Vec::new())
    }

    /// [`Api::patch`] with dry-run control.
    #[allow(clippy::too_many_arguments)]
    pub fn patch_with(
        &self,
        res: ResourceId,
        ns: &str,
        name: &str,
        pt: PatchType,
        body: &[u8],
        sub: Option<&str>,
        field_manager: Option<&str>,
        force: bool,
        dry: bool,
        fields: Option<crate::fields::Mode>,
        warnings: &mut Vec<String>,
    ) -> ApiResult<Arc<Obj>> {
        let desc = res.desc();
        let applied = if pt == PatchType::Apply {
            let manager = field_manager.filter(|m| !m.is_empty()).ok_or_else(|| {
                ApiError::bad_request("PATCH, field manager is required for apply requests")
            })?;
            let mut v = patch::decode_yaml(body)?;
            check_type(res, &mut v)?;
            if let Some(n) = meta_str(&v, "name")
                && n != name
            {
                return Err(ApiError::bad_request(format!("the name of the object ({n}) does not match the name on the URL ({name})")));
            }
            Some((v, manager.to_string()))
        } else {
            None
        };
        let mut absent = false;
        let out = self.store.mutate_with(res, ns, name, dry, |cur| {
            let Some(cur) = cur else {
                if applied.is_some() && sub.is_none() {
                    absent = true;
                    return Ok(Change::Keep);
                }
                return Err(ApiError::not_found(desc.group, desc.plural, name));
            };
            let patched = match &applied {
                Some((v, manager)) => apply::server_side_apply(Some(&cur.value), v, manager, desc.kind, &now_rfc3339(), force)?,
                None => patch::apply_patch(pt, &cur.value, body, desc.kind)?,
            };
            let patched = match fields {
                Some(mode) => crate::fields::enforce(res, patched, mode, warnings)?,
                None => patched,
            };
            let new = self.prepare_update(res, &cur.value, patched, sub)?;
            admit_update(res, ns, name, &new, &cur.value)?;
            self.finish_write(res, cur, new, dry)
        });
        if absent && let Some((v, manager)) = applied {
            let mut obj = apply::server_side_apply(None, &v, &manager, desc.kind, &now_rfc3339(), force)?;
            obj["metadata"]["name"] = json!(name);
            if let Some(mode) = fields {
                obj = crate::fields::enforce(res, obj, mode, warnings)?;
            }
            return self.create_with(res, ns, obj, dry);
        }
        Ok(out?.obj)
    }

    /// Delete an object honouring preconditions, finalizers and graceful pod deletion.
    pub fn delete(&self, res: ResourceId, ns: &str, name: &str, opts: &DeleteOpts) -> ApiResult<Deleted> {
        let desc = res.desc();
        if let Some(p) = &opts.propagation_policy
            && !["Orphan", "Background", "Foreground"].contains(&p.as_str())
        {
            return Err(ApiError::invalid(desc.group, desc.kind, name, vec![crate::error::Cause::not_supported("propagationPolicy", p, &["Foreground", "Background", "Orphan"])]));
        }
        if res == resources::NAMESPACES && ["default", "kube-system", "kube-public"].contains(&name) {
            return Err(ApiError::forbidden(format!("namespaces {name:?} is forbidden: this namespace may not be deleted")));
        }
        let mut gone = false;
        let dry = opts.dry_run;
        let out = self.store.mutate_with(res, ns, name, dry, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found(desc.group, desc.plural, name))?;
            let v = &cur.value;
            let write = Write { res, operation: Operation::Delete, namespace: ns, name, object: None, old_object: Some(v) };
            admission::admit(&write)?;
            if let Some(uid) = &opts.uid
                && Some(uid.as_str()) != meta_str(v, "uid")
            {
                return Err(ApiError::conflict(desc.group, desc.plural, name, &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta_str(v, "uid").unwrap_or(""))));
            }
            if let Some(rv) = &opts.resource_version
                && Some(rv.as_str()) != meta_str(v, "resourceVersion")
            {
                return Err(ApiError::conflict(desc.group, desc.plural, name, &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", meta_str(v, "resourceVersion").unwrap_or(""))));
            }
            let mut new = v.clone();
            if res == resources::PODS {
                let bound = v.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
                let phase = v.pointer("/status/phase").and_then(Value::as_str).unwrap_or("");
                let terminal = phase == "Succeeded" || phase == "Failed";
                let mut grace = opts
                    .grace_period_seconds
                    .or_else(|| v.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
                    .unwrap_or(30);
                if grace < 0 {
                    grace = 1;
                }
                if bound && !terminal && grace > 0 {
                    let existing = v.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
                    if existing.is_some_and(|e| e <= grace) {
                        return Ok(Change::Keep);
                    }
                    let until = jiff::Timestamp::now()
                        .checked_add(jiff::SignedDuration::from_secs(grace))
                        .ok()
                        .and_then(|t| t.round(jiff::Unit::Second).ok())
                        .map(|t| t.to_string())
                        .unwrap_or_else(now_rfc3339);
                    new["metadata"]["deletionTimestamp"] = json!(until);
                    new["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                    return Ok(Change::Put(new));
                }
            }
            if res == resources::NAMESPACES {
                if v.pointer("/metadata/deletionTimestamp").is_none() {
                    set_in(&mut new, &["metadata", "deletionTimestamp"], json!(now_rfc3339()));
                    set_in(&mut new, &["metadata", "deletionGracePeriodSeconds"], json!(0));
                    set_in(&mut new, &["status", "phase"], json!("Terminating"));
                    return Ok(Change::Put(new));
                }
                return Ok(Change::Keep);
            }
            if has_finalizers(v) {
                if v.pointer("/metadata/deletionTimestamp").is_some() {
                    return Ok(Change::Keep);
                }
                new["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
                new["metadata"]["deletionGracePeriodSeconds"] = json!(0);
                return Ok(Change::Put(new));
            }
            if res == resources::SERVICES {
                self.release_for(dry, v);
            }
            gone = true;
            Ok(Change::Delete)
        })?;
        if dry {
            return Ok(Deleted { obj: out.obj, gone });
        }
        if res == resources::NAMESPACES {
            self.finalize_namespace(name);
            return Ok(Deleted { obj: out.obj, gone: true });
        }
        let explicit = matches!(opts.propagation_policy.as_deref(), Some("Background" | "Foreground"));
        if gone && (explicit || res == resources::NODES) {
            let uid = meta_str(&out.obj.value, "uid").unwrap_or("").to_string();
            self.collect_dependents(&uid, if desc.namespaced { Some(ns) } else { None });
        }
        Ok(Deleted { obj: out.obj, gone })
    }

    /// Garbage-collect objects whose ownerReferences name `uid` (background propagation).
    fn collect_dependents(&self, uid: &str, ns: Option<&str>) {
        if uid.is_empty() {
            return;
        }
        let owned = |v: &Value| {
            v.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r.get("uid").and_then(Value::as_str) == Some(uid)))
        };
        for res in resources::all() {
            if ns.is_some() && !res.desc().namespaced {
                continue;
            }
            let page = self.store.list(res, ns, None, None, &owned);
            // Dependents' own dependents go too (a Deployment's ReplicaSets' pods).
            let opts = DeleteOpts { propagation_policy: Some("Background".into()), ..DeleteOpts::default() };
            for obj in page.items {
                let _ = self.delete(res, obj.namespace(), obj.name(), &opts);
            }
        }
    }

    /// Remove all content of a terminating namespace, then the namespace itself.
    fn finalize_namespace(&self, ns: &str) {
        for res in resources::all().filter(|r| r.desc().namespaced) {
            let (items, _) = self.store.snapshot(res, Some(ns));
            for obj in items {
                let name = obj.name().to_string();
                let _ = self.store.mutate(res, ns, &name, |cur| {
                    if let (Some(c), true) = (cur, res == resources::SERVICES) {
                        self.alloc.lock().release(&c.value);
                    }
                    Ok(if cur.is_some() { Change::Delete } else { Change::Keep })
                });
            }
        }
        let _ = self.store.mutate(resources::NAMESPACES, "", ns, |cur| Ok(if cur.is_some() { Change::Delete } else { Change::Keep }));
    }

    /// Bind a pod to a node (pods/binding), with upstream's checks: see
    /// [`crate::controllers::scheduler::binding`].
    pub fn bind(&self, ns: &str, name: &str, binding: Value) -> ApiResult<Value> {
        use crate::controllers::scheduler::binding;
        let node = binding::validate(ns, name, &binding)?;
        self.store.mutate(resources::PODS, ns, name, |cur| {
            let cur = cur.ok_or_else(|| ApiError::not_found("", "pods", name))?;
            Ok(Change::Put(binding::assign(&cur.value, &binding, &node)?))
        })?;
        Ok(success_status(201, None))
    }

    /// Evict a pod (pods/eviction) honouring PodDisruptionBudgets: see [`crate::eviction`].
    pub fn evict(&self, ns: &str, name: &str, eviction: &Value) -> ApiResult<Value> {
        crate::eviction::evict(self, ns, name, eviction)
    }
}
