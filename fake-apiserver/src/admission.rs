//! Per-request admission of writes (NodeRestriction runs here): the HTTP layer installs a
//! check for the duration of one synchronous registry call with [`scoped`]; the registry calls
//! [`admit`] with the final object of each write it is about to store, inside the store's
//! read-modify-write, exactly where upstream runs admission. Registry calls made without a
//! scope (controllers, the in-process API, internal side effects) are not checked.
//!
//! The check lives in a thread-local for the length of one synchronous call (no `await` in
//! between), so it never leaks into another request or task.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value;

use crate::auth::restriction::Operation;
use crate::error::ApiResult;
use crate::resources::ResourceId;

/// One write the registry is about to store.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub res: ResourceId,
    pub operation: Operation,
    pub namespace: &'a str,
    /// The object's name (for creates: the final name, generated names included).
    pub name: &'a str,
    /// The new object (create/update); `None` on delete.
    pub object: Option<&'a Value>,
    /// The stored object (update/delete).
    pub old_object: Option<&'a Value>,
}

/// A request's admission check. It runs while the store is locked: it must not read the store.
pub type Check = Rc<dyn Fn(&Write) -> ApiResult<()>>;

thread_local! {
    static CURRENT: RefCell<Option<Check>> = const { RefCell::new(None) };
}

/// Restores the previous check when dropped (also on unwinding).
struct Restore(Option<Check>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Runs `f` with `check` applied to every write the registry makes during it (`None`: none).
pub fn scoped<R>(check: Option<Check>, f: impl FnOnce() -> R) -> R {
    let Some(check) = check else { return f() };
    let previous = CURRENT.with(|c| c.borrow_mut().replace(check));
    let _restore = Restore(previous);
    f()
}

/// Called by the registry before storing a write: the current request's check, if any.
pub fn admit(write: &Write) -> ApiResult<()> {
    match CURRENT.with(|c| c.borrow().clone()) {
        Some(check) => check(write),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use crate::resources;

    fn write(name: &str) -> Write<'_> {
        Write { res: resources::PODS, operation: Operation::Create, namespace: "ns", name, object: None, old_object: None }
    }

    #[test]
    fn checks_apply_inside_the_scope_only() {
        assert!(admit(&write("a")).is_ok());
        let deny: Check = Rc::new(|w: &Write| if w.name == "bad" { Err(ApiError::forbidden("no")) } else { Ok(()) });
        let (inside_bad, inside_good) = scoped(Some(deny), || (admit(&write("bad")), admit(&write("good"))));
        assert_eq!(inside_bad.unwrap_err().code, 403);
        assert!(inside_good.is_ok());
        assert!(admit(&write("bad")).is_ok(), "the check ends with its scope");
        assert!(scoped(None, || admit(&write("bad"))).is_ok());
    }

    #[test]
    fn nested_scopes_restore_the_outer_check() {
        let outer: Check = Rc::new(|_: &Write| Err(ApiError::forbidden("outer")));
        let inner: Check = Rc::new(|_: &Write| Err(ApiError::forbidden("inner")));
        scoped(Some(outer), || {
            let e = scoped(Some(inner), || admit(&write("x"))).unwrap_err();
            assert_eq!(e.message, "inner");
            assert_eq!(admit(&write("x")).unwrap_err().message, "outer");
        });
        assert!(admit(&write("x")).is_ok());
    }
}
