//! What a profile's settings make of it, read as the AWS CLI reads them: a
//! role (`role_arn` with `source_profile` or `credential_source`; source
//! profiles may themselves assume roles, cycles are refused), static keys,
//! `credential_process`, or web identity. SSO and MFA prompts are refused
//! with a message, so the chain never silently falls through past them.
//!
//! Precedence within one profile, as in the AWS CLI: the selected profile's
//! `role_arn` wins over its keys and `credential_process` (unless it has a
//! `web_identity_token_file`, which is web identity); without a role, keys in
//! the credentials file, then `credential_process`, then keys in the config
//! file. A source profile's own keys win over its `role_arn`.

use super::assume_role::{AssumeRole, Origin};
use super::container::Container;
use super::imds::InstanceMetadata;
use super::process::Process;
use super::profile::{File, Profile};
use super::web_identity::WebIdentity;
use super::{Context, CredentialsError, Found, GivenKeys, Refreshing, Setup, Source};
use crate::aws::environment::Env;
use crate::aws::role::{self, Role};
use std::sync::Arc;

/// The chain's name for the selected profile's role.
pub const ROLE_SOURCE: &str = "profile role_arn";
/// The chain's name for the selected profile's own credentials.
pub const FILES_SOURCE: &str = "shared files";

/// Keys that make a profile an SSO profile, which needs an interactive login.
const SSO_KEYS: [&str; 4] = [
    "sso_session",
    "sso_start_url",
    "sso_account_id",
    "sso_role_name",
];

/// The `credential_source` values the AWS CLI knows.
const NAMED_SOURCES: [&str; 3] = ["Environment", "Ec2InstanceMetadata", "EcsContainer"];

/// The selected profile's role: the chain's "profile role_arn" source.
pub fn selected_role(env: Env, cx: &Context) -> Box<dyn Source> {
    let setup = match (cx.profiles.problem(), cx.profiles.selected()) {
        (Some(problem), _) => Setup::Broken(problem.message.clone()),
        (None, Some(p)) if assumes_role(p) => {
            let mut walk = Walk {
                env,
                cx,
                visited: vec![p.name.to_string()],
            };
            match walk.role(p) {
                Ok(source) => Setup::Ready(source),
                Err(e) => Setup::Broken(e.message),
            }
        }
        (None, Some(p)) if p.get("role_arn").is_some() => Setup::Off(format!(
            "the role_arn of profile `{}` is for its web_identity_token_file",
            p.name
        )),
        (None, _) => Setup::Off(format!("profile `{}` has no role_arn", cx.profiles.name)),
    };
    // A profile that cannot be selected (unknown, unreadable files) is the shared
    // files' failure, not a role's: no role need be involved.
    let name = if cx.profiles.problem().is_some() {
        FILES_SOURCE
    } else {
        ROLE_SOURCE
    };
    Box::new(Configured { name, setup })
}

/// Whether the selected profile's role takes its base credentials from the
/// environment: the chain then asks it before the environment's keys, which
/// would otherwise be used as they are and the role never assumed.
pub fn role_uses_environment(cx: &Context) -> bool {
    cx.profiles
        .selected()
        .is_some_and(|p| assumes_role(p) && p.get("credential_source") == Some("Environment"))
}

/// The selected profile's own credentials: the chain's "shared files" source.
pub fn selected_keys(env: Env, cx: &Context) -> Box<dyn Source> {
    let none = || {
        format!(
            "no keys for profile `{}` in {}",
            cx.profiles.name,
            cx.profiles.shown_files()
        )
    };
    let setup = match (cx.profiles.problem(), cx.profiles.selected()) {
        (Some(problem), _) => Setup::Broken(problem.message.clone()),
        (None, None) => Setup::Off(none()),
        (None, Some(p)) => match own_credentials(p, env, cx) {
            Ok(Some(source)) => Setup::Ready(source),
            Err(e) => Setup::Broken(e.message),
            Ok(None) => match ["source_profile", "credential_source"]
                .into_iter()
                .find(|k| p.get(k).is_some())
            {
                Some(key) => Setup::Broken(format!(
                    "profile `{}` has {key} but no role_arn: add the role_arn to assume",
                    p.name
                )),
                None => Setup::Off(none()),
            },
        },
    };
    Box::new(Configured {
        name: FILES_SOURCE,
        setup,
    })
}

/// Whether a profile assumes a role with AssumeRole (a `role_arn` beside a
/// `web_identity_token_file` is web identity's).
fn assumes_role(p: Profile) -> bool {
    p.get("role_arn").is_some() && p.get("web_identity_token_file").is_none()
}

/// What a profile gives without assuming a role: web identity, keys in the
/// credentials file, `credential_process`, keys in the config file; None when
/// it has none of these.
fn own_credentials(
    p: Profile,
    env: Env,
    cx: &Context,
) -> Result<Option<Box<dyn Source>>, CredentialsError> {
    if p.get("web_identity_token_file").is_some() {
        return Ok(Some(Box::new(WebIdentity::from_profile(p, env, cx))));
    }
    if let Some(key) = SSO_KEYS.into_iter().find(|k| p.get(k).is_some()) {
        return Err(CredentialsError::new(format!(
            "profile `{}` uses `{key}` (AWS IAM Identity Center), which this program does not \
             support; export the credentials (e.g. `eval $(aws configure export-credentials \
             --profile {} --format env)`)",
            p.name, p.name
        )));
    }
    if let Some(keys) = static_keys(p, File::Credentials)? {
        return Ok(Some(keys));
    }
    if let Some(command) = p.get("credential_process") {
        return Ok(Some(Box::new(Process::new(command, p.name))));
    }
    static_keys(p, File::Config)
}

/// The profile's keys in one file; an error naming the missing half.
fn static_keys(p: Profile, file: File) -> Result<Option<Box<dyn Source>>, CredentialsError> {
    let get = |key: &str| p.in_file(file, key);
    let names = [
        format!("`aws_access_key_id` of profile `{}`", p.name),
        format!("`aws_secret_access_key` of profile `{}`", p.name),
        format!("`aws_session_token` of profile `{}`", p.name),
    ];
    let keys = GivenKeys::pair(
        FILES_SOURCE,
        [&names[0], &names[1], &names[2]],
        (
            get("aws_access_key_id").map(str::to_string),
            get("aws_secret_access_key").map(super::Secret::new),
        ),
        get("aws_session_token").map(super::Secret::new),
        "no keys",
    )?;
    Ok(keys.is_set().then(|| {
        Box::new(keys.described(format!("keys of profile `{}` in the shared files", p.name)))
            as Box<dyn Source>
    }))
}

/// A walk down `source_profile` links, remembering the profiles seen.
struct Walk<'a> {
    env: Env<'a>,
    cx: &'a Context<'a>,
    visited: Vec<String>,
}

impl Walk<'_> {
    /// The role of profile `p`, assumed with its source's credentials.
    fn role(&mut self, p: Profile) -> Result<Box<dyn Source>, CredentialsError> {
        let role = role_of(p)?;
        if p.get("mfa_serial").is_some() {
            return Err(CredentialsError::new(format!(
                "profile `{}` asks for an MFA code (mfa_serial), which this program cannot prompt for; \
                 export temporary credentials instead (e.g. with `aws sts get-session-token`)",
                p.name
            )));
        }
        let base = match (p.get("source_profile"), p.get("credential_source")) {
            (Some(_), Some(_)) => {
                return Err(CredentialsError::new(format!(
                    "profile `{}` has both source_profile and credential_source; keep one",
                    p.name
                )))
            }
            (None, None) => {
                return Err(CredentialsError::new(format!(
                    "profile `{}` has role_arn but neither source_profile nor credential_source \
                     to assume it with",
                    p.name
                )))
            }
            (None, Some(named)) => self.named_source(p, named)?,
            (Some(source), None) => self.source_profile(p, source)?,
        };
        let base = Arc::new(Refreshing::pending(base));
        let assume = AssumeRole::new(
            role,
            Origin::Profile(p.name.to_string()),
            base,
            self.env,
            self.cx,
        )?;
        Ok(Box::new(assume))
    }

    /// The credentials of `name`, the `source_profile` of `parent`.
    fn source_profile(
        &mut self,
        parent: Profile,
        name: &str,
    ) -> Result<Box<dyn Source>, CredentialsError> {
        let profiles = self.cx.profiles;
        let Some(source) = profiles.profile(name) else {
            return Err(CredentialsError::new(format!(
                "the source_profile `{name}` of profile `{}` is in neither {}",
                parent.name,
                profiles.shown_files()
            )));
        };
        let has_keys = source.get("aws_access_key_id").is_some()
            || source.get("aws_secret_access_key").is_some();
        // A profile may name itself to take its own keys, as in the AWS CLI.
        let own_keys = name == parent.name && has_keys;
        if self.visited.iter().any(|v| v == name) && !own_keys {
            let mut cycle: Vec<String> = self.visited.iter().map(|v| format!("`{v}`")).collect();
            cycle.push(format!("`{name}`"));
            return Err(CredentialsError::new(format!(
                "the profiles {} form a cycle of source_profile: one of them needs its own \
                 credentials (keys, credential_process or credential_source) instead",
                cycle.join(" → ")
            )));
        }
        self.visited.push(name.to_string());
        if has_keys || !assumes_role(source) {
            return own_credentials(source, self.env, self.cx)?.ok_or_else(|| {
                CredentialsError::new(format!(
                    "the source_profile `{name}` of profile `{}` has no credentials (keys, \
                     credential_process, web_identity_token_file or a role_arn of its own)",
                    parent.name
                ))
            });
        }
        self.role(source)
    }

    /// The source a `credential_source` names.
    fn named_source(&self, p: Profile, named: &str) -> Result<Box<dyn Source>, CredentialsError> {
        let (env, network) = (self.env, self.cx.network);
        Ok(match named {
            "Environment" => Box::new(GivenKeys::from_env(env)?),
            "Ec2InstanceMetadata" => Box::new(InstanceMetadata::from_env(env, network)),
            "EcsContainer" => Box::new(Container::from_env(env, network)),
            other => {
                return Err(CredentialsError::new(format!(
                    "the credential_source `{other}` of profile `{}` is not one of {}",
                    p.name,
                    NAMED_SOURCES.join(", ")
                )))
            }
        })
    }
}

/// The role a profile names, each setting checked.
fn role_of(p: Profile) -> Result<Role, CredentialsError> {
    let bad = |key: &str, problem: String| {
        CredentialsError::new(format!("{key} of profile `{}`: {problem}", p.name))
    };
    let arn = p.get("role_arn").unwrap_or_default().to_string();
    role::check_arn(&arn).map_err(|e| bad("role_arn", e))?;
    let external_id = p.get("external_id").map(str::to_string);
    if let Some(id) = &external_id {
        role::check_external_id(id).map_err(|e| bad("external_id", e))?;
    }
    let session_name = match p.get("role_session_name") {
        Some(name) => {
            role::check_session_name(name).map_err(|e| bad("role_session_name", e))?;
            name.to_string()
        }
        None => role::default_session_name(),
    };
    let duration_seconds = match p.get("duration_seconds") {
        Some(text) => role::check_duration(text).map_err(|e| bad("duration_seconds", e))?,
        None => role::DEFAULT_DURATION_SECONDS,
    };
    Ok(Role {
        arn,
        external_id,
        session_name,
        duration_seconds,
    })
}

/// A source the shared files set up, under the chain's name for it.
struct Configured {
    name: &'static str,
    setup: Setup<Box<dyn Source>>,
}

impl Source for Configured {
    fn name(&self) -> &'static str {
        self.name
    }

    fn describe(&self) -> String {
        match &self.setup {
            Setup::Ready(source) => source.describe(),
            _ => format!("credentials from the {}", self.name),
        }
    }

    fn fetch(&self) -> Result<Found, CredentialsError> {
        match self.setup.ready() {
            Ok(source) => source.fetch(),
            Err(answer) => answer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::credentials::profile::tests::with_files;
    use crate::aws::credentials::profile::Profiles;
    use crate::aws::credentials::tests::{env_of, with_context};

    const CREDENTIALS: &str = "\
[base]
aws_access_key_id = AKBASE
aws_secret_access_key = base-secret
";

    const CONFIG: &str = "\
[profile top]
role_arn = arn:aws:iam::123456789012:role/top
source_profile = middle
[profile middle]
role_arn = arn:aws:iam::123456789012:role/middle
source_profile = base
[profile keyed-role]
role_arn = arn:aws:iam::123456789012:role/keyed
source_profile = base
aws_access_key_id = AKKEYED
aws_secret_access_key = keyed-secret
[profile role-and-process]
role_arn = arn:aws:iam::123456789012:role/rp
source_profile = base
credential_process = false
[profile keys-win-as-source]
role_arn = arn:aws:iam::123456789012:role/outer
source_profile = keyed-role
[profile self]
role_arn = arn:aws:iam::123456789012:role/self
source_profile = self
aws_access_key_id = AKSELF
aws_secret_access_key = self-secret
[profile self-no-keys]
role_arn = arn:aws:iam::123456789012:role/self
source_profile = self-no-keys
[profile a]
role_arn = arn:aws:iam::123456789012:role/a
source_profile = b
[profile b]
role_arn = arn:aws:iam::123456789012:role/b
source_profile = a
[profile both]
role_arn = arn:aws:iam::123456789012:role/both
source_profile = base
credential_source = Environment
[profile neither]
role_arn = arn:aws:iam::123456789012:role/neither
[profile unknown-source]
role_arn = arn:aws:iam::123456789012:role/x
credential_source = Laptop
[profile env-role]
role_arn = arn:aws:iam::123456789012:role/env
credential_source = Environment
[profile mfa]
role_arn = arn:aws:iam::123456789012:role/mfa
source_profile = base
mfa_serial = arn:aws:iam::123456789012:mfa/me
[profile bad-arn]
role_arn = arn:aws:iam::123:role/short
source_profile = base
[profile bad-duration]
role_arn = arn:aws:iam::123456789012:role/d
source_profile = base
duration_seconds = 60
[profile missing-source]
role_arn = arn:aws:iam::123456789012:role/m
source_profile = nowhere
[profile empty-source]
role_arn = arn:aws:iam::123456789012:role/e
source_profile = empty
[profile empty]
region = eu-west-1
[profile process-and-config-keys]
credential_process = /usr/bin/get-creds --secret-arg
aws_access_key_id = AKCFG
aws_secret_access_key = cfg-secret
[profile orphan-source]
source_profile = base
[profile web]
role_arn = arn:aws:iam::123456789012:role/web
web_identity_token_file = /var/run/token
[profile sso]
sso_session = corp
";

    /// Runs `f` with the files above, profile `profile` selected.
    fn with_profile<T>(profile: &str, f: impl FnOnce(&Context) -> T) -> T {
        with_files((CREDENTIALS, CONFIG), |creds, config| {
            let env = env_of(&[
                ("AWS_SHARED_CREDENTIALS_FILE", creds),
                ("AWS_CONFIG_FILE", config),
                ("AWS_PROFILE", profile),
            ]);
            let profiles = Profiles::load(&env);
            with_context(&profiles, Some("http://127.0.0.1:9"), f)
        })
    }

    /// What the role source says of the profile: its description, or its error.
    fn role(profile: &str) -> Result<String, String> {
        with_profile(profile, |cx| {
            let env = env_of(&[]);
            let source = selected_role(&env, cx);
            match &source.fetch() {
                Err(e) if !e.transient => Err(e.message.clone()),
                Ok(Found::No(why)) => Err(why.clone()),
                // Set up: it tried STS (nothing listens on port 9).
                _ => Ok(source.describe()),
            }
        })
    }

    fn keys(profile: &str) -> Result<String, String> {
        with_profile(profile, |cx| {
            let source = selected_keys(&env_of(&[]), cx);
            match source.fetch() {
                Ok(Found::Yes(_)) => Ok(source.describe()),
                Ok(Found::No(why)) => Err(why),
                Err(e) => Err(e.message),
            }
        })
    }

    #[test]
    fn chains_of_source_profiles() {
        let top = role("top").unwrap();
        assert!(
            top.starts_with("assumed role arn:aws:iam::123456789012:role/top of profile `top`")
                && top.contains(
                    "assumed role arn:aws:iam::123456789012:role/middle of profile `middle`"
                )
                && top.contains("keys of profile `base`"),
            "{top}"
        );
        // In the selected profile the role wins over its keys and process; as a
        // source profile, its keys win over its role.
        let keyed = role("keyed-role").unwrap();
        assert!(
            keyed.contains("role/keyed") && keyed.contains("`base`"),
            "{keyed}"
        );
        let rp = role("role-and-process").unwrap();
        assert!(
            rp.contains("role/rp") && !rp.contains("credential_process"),
            "{rp}"
        );
        let outer = role("keys-win-as-source").unwrap();
        assert!(
            outer.contains("keys of profile `keyed-role`") && !outer.contains("role/keyed"),
            "{outer}"
        );
        let own = role("self").unwrap();
        assert!(own.contains("keys of profile `self`"), "{own}");
        assert!(with_profile("env-role", role_uses_environment));
        assert!(!with_profile("top", role_uses_environment));
    }

    #[test]
    fn cycles_and_broken_roles_are_refused() {
        let e = role("a").unwrap_err();
        assert!(e.contains("`a` → `b` → `a`") && e.contains("cycle"), "{e}");
        let e = role("self-no-keys").unwrap_err();
        assert!(e.contains("`self-no-keys` → `self-no-keys`"), "{e}");
        for (profile, expected) in [
            ("both", "both source_profile and credential_source"),
            ("neither", "neither source_profile nor credential_source"),
            (
                "unknown-source",
                "`Laptop` of profile `unknown-source` is not one of Environment",
            ),
            ("mfa", "mfa_serial"),
            ("bad-arn", "role_arn of profile `bad-arn`"),
            ("bad-duration", "duration_seconds of profile `bad-duration`"),
            (
                "missing-source",
                "source_profile `nowhere` of profile `missing-source` is in neither",
            ),
            (
                "empty-source",
                "source_profile `empty` of profile `missing-source`",
            ),
        ] {
            let e = role(profile).unwrap_err();
            let expected = expected.replace("`missing-source`", &format!("`{profile}`"));
            assert!(e.contains(&expected), "{profile}: {e}");
        }
        // Not a role for AssumeRole: web identity's, or none.
        assert!(role("web").unwrap_err().contains("web_identity_token_file"));
        assert!(role("empty").unwrap_err().contains("no role_arn"));
    }

    #[test]
    fn a_profile_without_a_role() {
        let process = keys("process-and-config-keys").unwrap_err();
        // credential_process comes before the config file's keys; its arguments are not shown.
        assert!(
            process.contains("credential_process `/usr/bin/get-creds ...` of profile")
                && !process.contains("--secret-arg"),
            "{process}"
        );
        assert!(keys("base").unwrap().contains("keys of profile `base`"));
        let e = keys("orphan-source").unwrap_err();
        assert!(e.contains("source_profile but no role_arn"), "{e}");
        let e = keys("sso").unwrap_err();
        assert!(
            e.contains("sso_session") && e.contains("export-credentials"),
            "{e}"
        );
        assert!(keys("empty")
            .unwrap_err()
            .contains("no keys for profile `empty`"));
    }
}
