//! `strata-pve`: the Rust side of the Proxmox VE storage plugin. The Perl module
//! `PVE::Storage::Custom::StrataPlugin` runs it once per call with the request as JSON on
//! stdin (see `protocol.rs`) and reads one JSON answer from stdout.

use std::io::Read;

mod local;
mod ops;
mod protocol;

use protocol::{Answer, Request, VERSION};

fn answer(input: &str) -> Answer {
    let req: Request = match serde_json::from_str(input) {
        Ok(r) => r,
        Err(e) => return Answer::err(format!("strata-pve: unreadable request: {e}")),
    };
    if req.version != VERSION {
        return Answer::err(format!(
            "strata-pve speaks protocol version {VERSION}, the plugin sent {}: install the plugin and strata-pve of one release",
            req.version
        ));
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Answer::err(format!("strata-pve: {e}")),
    };
    match rt.block_on(ops::run(&req)) {
        Ok(v) => Answer::ok(v),
        Err(e) => Answer::err(e),
    }
}

fn main() {
    let mut input = String::new();
    let a = match std::io::stdin().read_to_string(&mut input) {
        Ok(_) => answer(&input),
        Err(e) => Answer::err(format!("strata-pve: cannot read the request: {e}")),
    };
    println!(
        "{}",
        serde_json::to_string(&a).expect("answers always serialize")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_requests_get_clear_answers() {
        let a = answer("not json");
        assert!(!a.ok);
        assert!(a.error.unwrap().contains("unreadable request"));
        let a = answer(r#"{"version":2,"op":"status","storeid":"s","node":"n"}"#);
        assert!(a.error.unwrap().contains("protocol version 1"));
        let a = answer(r#"{"version":1,"op":"explode","storeid":"s","node":"n"}"#);
        assert!(a.error.unwrap().contains("'explode' is not an operation"));
        let a = answer(
            r#"{"version":1,"op":"alloc_image","storeid":"s","node":"n","args":{"vmid":1,"size_kib":0}}"#,
        );
        assert!(a.error.unwrap().contains("size 0"));
        let a = answer(
            r#"{"version":1,"op":"free_image","storeid":"s","node":"n","args":{"volname":"ct-1"}}"#,
        );
        assert!(a.error.unwrap().contains("not a disk name"));
    }
}
