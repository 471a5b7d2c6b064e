use super::*;

const LOG: &str = "\
2024-01-01T00:00:01.5Z stdout F one
2024-01-01T00:00:02Z stderr F two
2024-01-01T00:00:03.000000001Z stdout P thr
2024-01-01T00:00:03.1Z stdout P e
2024-01-01T00:00:03.2Z stdout F e
2024-01-01T00:00:04Z stdout F four
";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn opts(q: &str) -> LogOptions {
    parse_log_query(q, ts("2024-01-01T00:00:10Z")).unwrap()
}

fn render(q: &str) -> String {
    String::from_utf8(render_log(LOG.as_bytes(), &opts(q))).unwrap()
}

#[test]
fn strips_the_prefix_and_joins_partial_lines() {
    assert_eq!(render(""), "one\ntwo\nthree\nfour\n");
}

#[test]
fn timestamps_as_kubelet_prints_them() {
    assert_eq!(
        render("timestamps=true"),
        "2024-01-01T00:00:01.500000000Z one\n2024-01-01T00:00:02.000000000Z two\n\
         2024-01-01T00:00:03.000000001Z three\n2024-01-01T00:00:04.000000000Z four\n"
    );
}

#[test]
fn tail_counts_logical_lines() {
    assert_eq!(render("tailLines=2"), "three\nfour\n");
    assert_eq!(render("tailLines=1"), "four\n");
    assert_eq!(render("tailLines=0"), "");
    assert_eq!(render("tailLines=10"), "one\ntwo\nthree\nfour\n");
    assert_eq!(render("tail=3"), "two\nthree\nfour\n");
    assert_eq!(render("tailLines=1&tail=all"), "one\ntwo\nthree\nfour\n");
}

#[test]
fn since_time_and_seconds() {
    assert_eq!(render("sinceTime=2024-01-01T00%3A00%3A02Z"), "two\nthree\nfour\n");
    // now is 00:00:10: the last 7 seconds start at 00:00:03.
    assert_eq!(render("sinceSeconds=7"), "three\nfour\n");
    // since and tail together: the tail first, then since.
    assert_eq!(render("tailLines=3&sinceTime=2024-01-01T00:00:03.5Z"), "four\n");
}

#[test]
fn limit_bytes_cuts_the_output() {
    assert_eq!(render("limitBytes=6"), "one\ntw");
    assert_eq!(render("limitBytes=4"), "one\n");
    assert_eq!(render("limitBytes=40&timestamps=1"), "2024-01-01T00:00:01.500000000Z one\n2024-");
}

#[test]
fn unterminated_partial_and_garbage_lines() {
    let data = b"2024-01-01T00:00:01Z stdout F a\nnot a log line\n2024-01-01T00:00:02Z stdout P b";
    assert_eq!(render_log(data, &LogOptions::default()), b"a\nb");
    assert_eq!(render_log(data, &opts("tailLines=1")), b"b");
    assert_eq!(render_log(b"", &LogOptions::default()), b"");
}

#[test]
fn parses_cri_lines() {
    let r = parse_cri_line(b"2016-10-06T00:17:09.669794202Z stderr F log content 2").unwrap();
    assert_eq!((r.stderr, r.partial, r.text), (true, false, &b"log content 2"[..]));
    assert_eq!(r.time, ts("2016-10-06T00:17:09.669794202Z"));
    assert!(parse_cri_line(b"2016-10-06T00:17:09Z stdout P:x part").unwrap().partial);
    assert_eq!(parse_cri_line(b"2016-10-06T00:17:09Z stdout F").unwrap().text, b"");
    assert!(parse_cri_line(b"2016-10-06T00:17:09Z stdin F x").is_none());
    assert!(parse_cri_line(b"yesterday stdout F x").is_none());
    assert!(parse_cri_line(b"").is_none());
}

#[test]
fn complete_lines_leave_the_unterminated_rest() {
    let (lines, end) = complete_lines(b"a\nb\nc");
    assert_eq!((lines, end), (vec![&b"a"[..], &b"b"[..]], 4));
    assert_eq!(complete_lines(b"no newline"), (Vec::new(), 0));
}

#[test]
fn formatter_streams_line_by_line() {
    let mut f = LogFormatter::new(&LogOptions::default());
    let mut out = Vec::new();
    f.push(b"2024-01-01T00:00:01Z stdout P hel", &mut out);
    assert!(out.is_empty(), "a partial record waits for the rest of its line");
    f.push(b"2024-01-01T00:00:02Z stdout F lo", &mut out);
    assert_eq!(out, b"hello\n");
}

#[test]
fn query_flags_and_errors() {
    let now = ts("2024-01-01T00:00:10Z");
    let o = parse_log_query("follow=true&previous=1&timestamps=True&limitBytes=5", now).unwrap();
    assert!(o.follow && o.previous && o.timestamps);
    assert_eq!(o.limit_bytes, Some(5));
    assert!(!parse_log_query("follow=false", now).unwrap().follow);
    assert_eq!(parse_log_query("tailLines=x", now), Err(LogQueryError::Decode));
    assert_eq!(parse_log_query("sinceTime=yesterday", now), Err(LogQueryError::Decode));
    assert_eq!(parse_log_query("tailLines=-1", now), Err(LogQueryError::Invalid));
    assert_eq!(parse_log_query("limitBytes=0", now), Err(LogQueryError::Invalid));
    assert_eq!(parse_log_query("sinceSeconds=0", now), Err(LogQueryError::Invalid));
    let both = parse_log_query("sinceSeconds=1&sinceTime=2024-01-01T00:00:00Z", now);
    assert_eq!(both, Err(LogQueryError::Invalid));
    assert_eq!(LogQueryError::Invalid.status(), 422);
    assert_eq!(LogQueryError::Decode.to_string(), r#"{"message": "Unable to decode query."}"#);
    let e = parse_log_query("stream=Stdout", now).unwrap_err();
    assert_eq!(e.status(), 400);
    assert!(e.to_string().starts_with("unable to return the given log stream: \"Stdout\""), "{e}");
    assert!(parse_log_query("stream=All", now).is_ok());
}
