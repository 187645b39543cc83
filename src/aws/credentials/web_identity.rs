//! Web identity (EKS IAM roles for service accounts): the token in
//! `AWS_WEB_IDENTITY_TOKEN_FILE` is exchanged for role credentials with STS
//! AssumeRoleWithWebIdentity, an unsigned form POST.

use super::profile::Profile;
use super::remote::Call;
use super::{sts, Context, CredentialsError, Found, Setup, Source};
use crate::aws::environment::Env;
use crate::aws::http::FORM_CONTENT_TYPE;
use crate::aws::network::shown_url;
use crate::aws::role::default_session_name;

/// Role credentials for a web identity token.
pub struct WebIdentity(Setup<StsCall>);

/// What the STS call needs.
pub struct StsCall {
    token_file: String,
    role_arn: String,
    session_name: String,
    sts: String,
    agent: ureq::Agent,
}

impl WebIdentity {
    /// Set up from `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ROLE_ARN`, `AWS_ROLE_SESSION_NAME`
    /// (or the selected profile's `web_identity_token_file`, `role_arn`, `role_session_name`).
    pub fn from_env(env: Env, cx: &Context) -> WebIdentity {
        match env("AWS_WEB_IDENTITY_TOKEN_FILE") {
            Some(file) => WebIdentity::new(
                Some(file),
                env("AWS_ROLE_ARN"),
                env("AWS_ROLE_SESSION_NAME"),
                env,
                cx,
            ),
            None => match cx.profiles.selected() {
                Some(p) => WebIdentity::from_profile(p, env, cx),
                None => WebIdentity::new(None, None, None, env, cx),
            },
        }
    }

    /// Set up from a profile's `web_identity_token_file`, `role_arn`, `role_session_name`.
    pub fn from_profile(p: Profile, env: Env, cx: &Context) -> WebIdentity {
        let get = |key: &str| p.get(key).map(str::to_string);
        WebIdentity::new(
            get("web_identity_token_file"),
            get("role_arn"),
            get("role_session_name"),
            env,
            cx,
        )
    }

    fn new(
        token_file: Option<String>,
        role_arn: Option<String>,
        session_name: Option<String>,
        env: Env,
        cx: &Context,
    ) -> WebIdentity {
        WebIdentity(match (token_file, role_arn) {
            (None, _) => Setup::Off("AWS_WEB_IDENTITY_TOKEN_FILE not set".into()),
            (Some(_), None) => {
                Setup::Broken("a web identity token file is set but AWS_ROLE_ARN is not".into())
            }
            (Some(token_file), Some(role_arn)) => match sts::endpoint(env, cx) {
                Ok(sts) => Setup::Ready(StsCall {
                    agent: cx
                        .network
                        .agent(&sts, sts::CONNECT_TIMEOUT, sts::REQUEST_TIMEOUT),
                    token_file,
                    role_arn,
                    session_name: session_name.unwrap_or_else(default_session_name),
                    sts,
                }),
                Err(why) => Setup::Broken(why.message),
            },
        })
    }
}

impl Source for WebIdentity {
    fn name(&self) -> &'static str {
        "web identity"
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        let setup = match self.0.ready() {
            Ok(setup) => setup,
            Err(answer) => return answer,
        };
        // Read on every fetch: EKS rotates the token file.
        let token = std::fs::read_to_string(&setup.token_file).map_err(|e| {
            CredentialsError::new(format!(
                "cannot read the web identity token file {}: {e}",
                setup.token_file
            ))
        })?;
        let form = sts::form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", sts::VERSION),
            ("RoleArn", setup.role_arn.as_str()),
            ("RoleSessionName", setup.session_name.as_str()),
            ("WebIdentityToken", token.trim()),
        ]);
        let url = format!("{}/", setup.sts);
        let answer = Call {
            method: "POST",
            url: &url,
            headers: &[("content-type", FORM_CONTENT_TYPE)],
            body: form.as_bytes(),
        }
        .send(&setup.agent)
        .map_err(|e| {
            CredentialsError::unreachable(format!(
                "STS at {} did not answer: {e}",
                shown_url(&setup.sts)
            ))
        })?;
        if answer.status != 200 {
            let (code, message) = sts::error_of(&answer.body);
            return Err(sts::refusal(
                answer.status,
                &code,
                format!(
                    "STS AssumeRoleWithWebIdentity for {} was refused: HTTP {} {code}: {message}",
                    setup.role_arn, answer.status
                ),
            ));
        }
        sts::parse_credentials(&answer.body, "web identity").map(Found::Yes)
    }
}
