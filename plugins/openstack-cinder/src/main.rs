//! `strata-cinder`: the Rust side of the OpenStack Cinder volume driver. The Python class
//! `strata_cinder.driver.StrataDriver` runs it once per call with the request as JSON on
//! stdin (see `protocol.rs`) and reads one JSON answer from stdout.

use std::io::Read;

mod ops;
mod protocol;

use protocol::{Answer, Failure, Request, VERSION};

fn answer(input: &str) -> Answer {
    let req: Request = match serde_json::from_str(input) {
        Ok(r) => r,
        Err(e) => {
            return Answer::failed(Failure::invalid(format!(
                "strata-cinder: unreadable request: {e}"
            )))
        }
    };
    if req.version != VERSION {
        return Answer::failed(Failure::invalid(format!(
            "strata-cinder speaks protocol version {VERSION}, the driver sent {}: install the driver and strata-cinder of one release",
            req.version
        )));
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Answer::failed(Failure::from(format!("strata-cinder: {e}"))),
    };
    match rt.block_on(ops::run(&req)) {
        Ok(v) => Answer::ok(v),
        Err(f) => Answer::failed(f),
    }
}

fn main() {
    let mut input = String::new();
    let a = match std::io::stdin().read_to_string(&mut input) {
        Ok(_) => answer(&input),
        Err(e) => Answer::failed(Failure::invalid(format!(
            "strata-cinder: cannot read the request: {e}"
        ))),
    };
    println!(
        "{}",
        serde_json::to_string(&a).expect("answers always serialize")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> (Option<protocol::Kind>, String) {
        let a = answer(input);
        assert!(!a.ok);
        (a.kind, a.error.unwrap_or_default())
    }

    #[test]
    fn bad_requests_get_clear_answers() {
        let (kind, e) = err("not json");
        assert_eq!(kind, Some(protocol::Kind::Invalid));
        assert!(e.contains("unreadable request"), "{e}");
        let (_, e) = err(r#"{"version":2,"op":"stats"}"#);
        assert!(e.contains("protocol version 1"), "{e}");
        let (kind, e) = err(r#"{"version":1,"op":"explode"}"#);
        assert_eq!(kind, Some(protocol::Kind::Invalid));
        assert!(e.contains("'explode' is not an operation"), "{e}");
        let (_, e) = err(r#"{"version":1,"op":"create","args":{"name":"CV_x","size_gib":0}}"#);
        assert!(e.contains("size"), "{e}");
        let (_, e) = err(r#"{"version":1,"op":"create","args":{"name":"bad name","size_gib":1}}"#);
        assert!(e.contains("bad name"), "{e}");
    }
}
