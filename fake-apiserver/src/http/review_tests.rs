use super::*;

#[test]
fn routes() {
    let r = route(AUTHORIZATION_GROUP, &["selfsubjectaccessreviews"]).unwrap();
    assert_eq!((r.kind, r.namespace), (ReviewKind::SelfSubjectAccessReview, None));
    let r = route(AUTHORIZATION_GROUP, &["namespaces", "ns", "localsubjectaccessreviews"]).unwrap();
    assert_eq!((r.kind, r.namespace.as_deref()), (ReviewKind::LocalSubjectAccessReview, Some("ns")));
    assert_eq!(route(AUTHORIZATION_GROUP, &["localsubjectaccessreviews"]), None);
    assert_eq!(route(AUTHORIZATION_GROUP, &["namespaces", "ns", "subjectaccessreviews"]), None);
    assert_eq!(route(AUTHENTICATION_GROUP, &["selfsubjectaccessreviews"]), None);
    assert_eq!(route(AUTHENTICATION_GROUP, &["selfsubjectreviews"]).unwrap().kind, ReviewKind::SelfSubjectReview);
    assert_eq!(route(AUTHENTICATION_GROUP, &["selfsubjectreviews", "x"]), None);
}

#[test]
fn discovery_lists_create_only() {
    let list = resource_list(AUTHORIZATION_GROUP, "v1").unwrap();
    let names: Vec<&str> = list["resources"].as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["localsubjectaccessreviews", "selfsubjectaccessreviews", "subjectaccessreviews"]);
    assert!(list["resources"].as_array().unwrap().iter().all(|r| r["verbs"] == json!(["create"])));
    assert_eq!(list["resources"][0]["namespaced"], true);
    assert_eq!(list["resources"][0]["singularName"], "localsubjectaccessreview");
    assert!(resource_list(AUTHENTICATION_GROUP, "v1beta1").is_none());
    assert!(resource_list("apps", "v1").is_none());
}

#[test]
fn self_subject_review_echoes_the_user() {
    let user = User { uid: "u1".into(), ..User::new("alice", &["dev", "system:authenticated"]) };
    let r = self_subject_review(&user);
    assert_eq!(r["status"]["userInfo"], json!({"username": "alice", "uid": "u1", "groups": ["dev", "system:authenticated"]}));
    assert_eq!(r["apiVersion"], "authentication.k8s.io/v1");
}

#[test]
fn body_type_is_checked() {
    let mut ok = json!({});
    check_type(ReviewKind::SubjectAccessReview, &mut ok).unwrap();
    assert_eq!((ok["apiVersion"].as_str(), ok["kind"].as_str()), (Some("authorization.k8s.io/v1"), Some("SubjectAccessReview")));
    let mut wrong = json!({"kind": "Pod"});
    assert_eq!(check_type(ReviewKind::SubjectAccessReview, &mut wrong).unwrap_err().code, 400);
    assert_eq!(check_type(ReviewKind::SubjectAccessReview, &mut json!([1])).unwrap_err().code, 400);
}
