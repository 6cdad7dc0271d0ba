//! `controller auth`: token authentication of the REST API, with the upstream client's
//! commands (`init`, `create`, `list`, `modify`, `delete`). `init` keeps the first token in
//! the user's linstor-client.conf (`[global] auth-token`) unless told not to; `create` does
//! so with `--save-token`.

use clap::Subcommand;
use strata_api::auth::{CreateAuthToken, InitAuthTokenRequest, ModifyAuthToken};
use strata_api::ApiCallRc;
use strata_client::calls;

use crate::client_conf;
use crate::common::Request;
use crate::context::{err, out, parse, Ctx};
use crate::error::{self, CliError};
use crate::output;
use crate::table::Table;

#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum AuthCmd {
    /// Turns token authentication on and makes the first (admin) token.
    #[command(visible_alias = "i")]
    Init {
        /// Description of the first token.
        token_description: String,
        /// Only for satellites (they authenticate with certificates here: no effect).
        #[arg(long = "only-satellites")]
        only_satellites: bool,
        /// Accepted for compatibility: HTTPS is configured in linstor.toml.
        #[arg(long = "no-https")]
        no_https: bool,
        /// Do not keep the token in the linstor-client configuration file.
        #[arg(long = "do-not-save-token")]
        do_not_save_token: bool,
    },
    /// Makes a new token.
    #[command(visible_alias = "c")]
    Create {
        /// Name or description of the token.
        token_description: String,
        /// Address or network (10.0.0.0/24) the token may be used from.
        #[arg(long = "ip-filter")]
        ip_filter: Option<String>,
        /// Expiry date (2030-12-31) or RFC 3339 date-time.
        #[arg(long = "expires-at")]
        expires_at: Option<String>,
        /// What the token may do.
        #[arg(long, value_parser = ["admin", "read-only"])]
        role: Option<String>,
        /// Keep the token in the linstor-client configuration file.
        #[arg(long = "save-token")]
        save_token: bool,
    },
    /// Lists the tokens (never their secrets).
    #[command(visible_alias = "l")]
    List {
        #[arg(short = 'p', long)]
        pastable: bool,
        /// Also the controller's own tokens.
        #[arg(short = 'a', long)]
        all: bool,
    },
    /// Changes a token.
    #[command(visible_alias = "m")]
    Modify {
        /// The token's id.
        id: u64,
        #[arg(long)]
        description: Option<String>,
        /// Switches the token on or off.
        #[arg(long, value_parser = ["true", "false"])]
        active: Option<String>,
        /// Address or network the token may be used from; '' removes the filter.
        #[arg(long = "ip-filter")]
        ip_filter: Option<String>,
    },
    /// Revokes a token.
    #[command(visible_alias = "d")]
    Delete {
        /// The token's id.
        id: u64,
    },
}

pub fn requests(cmd: &AuthCmd) -> Option<Request> {
    Some(match cmd {
        AuthCmd::Init {
            token_description,
            only_satellites,
            no_https,
            ..
        } => calls::auth_init(&InitAuthTokenRequest {
            only_satellites: *only_satellites,
            description: Some(token_description.clone()),
            no_https: *no_https,
        }),
        AuthCmd::Create {
            token_description,
            ip_filter,
            expires_at,
            role,
            ..
        } => calls::auth_token_create(&CreateAuthToken {
            description: token_description.clone(),
            expires_at: expires_at.clone(),
            ip_filter: ip_filter.clone(),
            role: role.clone(),
        }),
        AuthCmd::Modify {
            id,
            description,
            active,
            ip_filter,
        } => calls::auth_token_modify(
            *id,
            &ModifyAuthToken {
                description: description.clone(),
                ip_filter: ip_filter.clone(),
                is_active: active.as_deref().map(|a| a == "true"),
            },
        ),
        AuthCmd::Delete { id } => calls::auth_token_delete(*id),
        AuthCmd::List { .. } => return None,
    })
}

/// Sends a call that makes a token, prints its replies and keeps the token if asked to.
async fn make(ctx: &mut Ctx, req: Request, save: bool) -> Result<i32, CliError> {
    let raw = ctx.fetch(req).await?;
    let replies: Vec<ApiCallRc> = parse(&raw, "replies")?;
    let code = ctx.print_replies(&replies, &[raw]);
    let token = replies.iter().find_map(|r| r.obj_refs.get("token"));
    if let (true, Some(token)) = (save, token) {
        match client_conf::save_token(token) {
            Ok(path) => out(&format!("Token saved to config file: {}\n", path.display())),
            Err(e) => {
                err(&format!("Error: the token could not be saved: {e}"));
                return Ok(error::UNKNOWN_ERROR);
            }
        }
    }
    Ok(code)
}

fn render(list: &strata_api::auth::AuthTokenList, all: bool, ctx: &Ctx, pastable: bool) -> String {
    let mut t = Table::new(ctx.style(pastable));
    for c in [
        "ID",
        "Description",
        "Created",
        "Active",
        "UserToken",
        "Role",
        "IpFilter",
        "Expires",
    ] {
        t.column(c);
    }
    let yes = |b: bool| if b { "Yes" } else { "No" };
    for tok in list.list.iter().filter(|t| all || t.is_user_token) {
        t.row(vec![
            tok.id.to_string().into(),
            tok.description.as_str().into(),
            tok.created_at
                .replace('T', " ")
                .trim_end_matches('Z')
                .into(),
            yes(tok.is_active).into(),
            yes(tok.is_user_token).into(),
            tok.role.as_deref().unwrap_or("admin").into(),
            tok.ip_filter.as_deref().unwrap_or("-").into(),
            tok.expires_at
                .as_deref()
                .map_or("-", |e| e.get(..10).unwrap_or(e))
                .into(),
        ]);
    }
    t.render()
}

pub async fn run(ctx: &mut Ctx, cmd: AuthCmd) -> Result<i32, CliError> {
    match &cmd {
        AuthCmd::List { pastable, all } => {
            let raw = ctx.fetch(calls::auth_tokens()).await?;
            if ctx.settings.machine {
                ctx.machine(&output::py_json_pretty(&raw));
                return Ok(error::OK);
            }
            let list = parse(&raw, "token list")?;
            out(&render(&list, *all, ctx, *pastable));
            Ok(error::OK)
        }
        AuthCmd::Init {
            do_not_save_token, ..
        } => {
            let req = requests(&cmd).expect("init is a call");
            make(ctx, req, !do_not_save_token).await
        }
        AuthCmd::Create { save_token, .. } => {
            let req = requests(&cmd).expect("create is a call");
            make(ctx, req, *save_token).await
        }
        _ => {
            let req = requests(&cmd).expect("a call");
            ctx.send(vec![req]).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{parse_line, Command};

    fn auth(args: &[&str]) -> AuthCmd {
        let mut argv = vec!["linstor", "controller", "auth"];
        argv.extend(args);
        match parse_line(&argv).unwrap().command {
            Some(Command::Controller(crate::controller::ControllerCmd::Auth(a))) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commands_send_linstor_bodies() {
        let r = requests(&auth(&["init", "first"])).unwrap();
        assert_eq!(r.path, "/v1/controller/auth/initialize-token-auth");
        assert_eq!(
            r.body.unwrap(),
            serde_json::json!({"only_satellites": false, "description": "first", "no_https": false})
        );
        let r = requests(&auth(&[
            "c",
            "ci",
            "--ip-filter",
            "10.0.0.0/8",
            "--role",
            "read-only",
        ]))
        .unwrap();
        assert_eq!(r.path, "/v1/controller/auth/token");
        assert_eq!(
            r.body.unwrap(),
            serde_json::json!({"description": "ci", "ip_filter": "10.0.0.0/8", "role": "read-only"})
        );
        let r = requests(&auth(&["modify", "3", "--active", "false"])).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("PUT", "/v1/controller/auth/token/3")
        );
        assert_eq!(r.body.unwrap(), serde_json::json!({"is_active": false}));
        let r = requests(&auth(&["d", "3"])).unwrap();
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("DELETE", "/v1/controller/auth/token/3")
        );
        assert!(requests(&auth(&["l"])).is_none());
        assert!(parse_line(&["linstor", "c", "auth", "create", "x", "--role", "root"]).is_err());
    }
}
