//! The region and the endpoint a client talks to: the user's setting, then
//! the environment and the shared files as the AWS CLI reads them, then the
//! region of the resource named by ARN, then the defaults.

use crate::aws::credentials::profile::Profiles;
use crate::aws::credentials::CredentialsError;
use crate::aws::environment::Env;
use crate::aws::network::{refuse_user_info, shown_url};

/// A resource named by ARN, and the region in it: it is reached in that region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArnRegion<'a> {
    /// The ARN, as the user gave it.
    pub arn: &'a str,
    /// Its region.
    pub region: &'a str,
}

/// it would otherwise surface as an unsigned request or a strange host name.
pub fn resolve_region(
    given: Option<&str>,
    env: Env,
    profiles: &Profiles,
    stream: Option<ArnRegion<'_>>,
) -> Result<String, CredentialsError> {
    let set = [
        ("`region` (config or --region)", given.map(str::to_string)),
        ("AWS_REGION", env("AWS_REGION")),
        ("AWS_DEFAULT_REGION", env("AWS_DEFAULT_REGION")),
        (
            "the AWS profile's `region`",
            profiles.get("region").map(str::to_string),
        ),
    ]
    .into_iter()
    .find_map(|(source, value)| Some((source, value?)));
    let (source, region) = match (set, stream) {
        (Some(found), _) => found,
        (None, Some(arn)) => return Ok(arn.region.to_string()),
        (None, None) => ("the default", "us-east-1".to_string()),
    };
    if !is_region_name(&region) {
        return Err(CredentialsError::new(format!(
            "the region `{region}` from {source} is not a region name \
             (lower-case letters, digits and dashes, e.g. eu-west-1)"
        )));
    }
    match stream {
        Some(arn) if arn.region != region => Err(CredentialsError::new(format!(
            "the stream ARN `{}` is in region `{}`, but {source} sets the region `{region}`: \
             a stream is reached in its own region; set the region to `{}` or unset it (the ARN's is then used)",
            arn.arn, arn.region, arn.region
        ))),
        _ => Ok(region),
    }
}

/// Whether `name` can be a region's: lower-case letters, digits and dashes.
pub fn is_region_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The endpoint: the config's, then `AWS_ENDPOINT_URL_KINESIS`, `AWS_ENDPOINT_URL`
/// (unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), then the region's default.
pub fn resolve_endpoint(
    given: Option<&str>,
    env: Env,
    region: &str,
) -> Result<String, CredentialsError> {
    if let Some(url) = given {
        return Ok(url.trim_end_matches('/').to_string());
    }
    if let Some(url) = env_endpoint(env, "AWS_ENDPOINT_URL_KINESIS")? {
        return Ok(url);
    }
    Ok(default_endpoint("kinesis", region))
}

/// An endpoint from `specific` or else `AWS_ENDPOINT_URL`, checked like the config's.
pub fn env_endpoint(env: Env, specific: &str) -> Result<Option<String>, CredentialsError> {
    if env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    for name in [specific, "AWS_ENDPOINT_URL"] {
        if let Some(url) = env(name) {
            return normalize_endpoint(url.trim())
                .map(Some)
                .map_err(|problem| CredentialsError::new(format!("{name} {problem}")));
        }
    }
    Ok(None)
}

/// `https://<service>.<region>.amazonaws.com`, `.com.cn` in China.
pub fn default_endpoint(service: &str, region: &str) -> String {
    if region.starts_with("cn-") {
        format!("https://{service}.{region}.amazonaws.com.cn")
    } else {
        format!("https://{service}.{region}.amazonaws.com")
    }
}

/// Checks an endpoint and returns it as a URL: an absolute http(s) URL with a
/// host, or a bare host name (the Java connector's example form), taken as https.
/// A user name or password in it is refused, and messages show the URL without them.
pub fn normalize_endpoint(url: &str) -> Result<String, String> {
    refuse_user_info(url)?;
    let shown = shown_url(url);
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    let uri: ureq::http::Uri = full
        .parse()
        .map_err(|e| format!("is not a valid URL (`{shown}`): {e}"))?;
    match uri.scheme_str() {
        Some("http") | Some("https") => {}
        _ => {
            return Err(format!(
                "must start with http:// or https:// (got `{shown}`), e.g. http://localhost:4566"
            ))
        }
    }
    match uri.host() {
        Some(h) if !h.is_empty() => {}
        _ => return Err(format!("has no host name (`{shown}`)")),
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "must not have a path or query (`{shown}`): Kinesis is served at the root"
        ));
    }
    Ok(full.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::credentials::tests::env_of;

    #[test]
    fn region_and_endpoint_fallbacks() {
        let none = Profiles::default();
        let env = env_of(&[("AWS_DEFAULT_REGION", "eu-west-1")]);
        assert_eq!(
            resolve_region(None, &env, &none, None).unwrap(),
            "eu-west-1"
        );
        let env = env_of(&[
            ("AWS_REGION", "us-west-2"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
        ]);
        assert_eq!(
            resolve_region(None, &env, &none, None).unwrap(),
            "us-west-2"
        );
        assert_eq!(
            resolve_region(None, &env_of(&[]), &none, None).unwrap(),
            "us-east-1"
        );
        for (bad, source) in [("us east-1", "AWS_REGION"), ("eu-west-1/x", "AWS_REGION")] {
            let e = resolve_region(None, &env_of(&[(source, bad)]), &none, None).unwrap_err();
            assert!(e.message.contains(bad) && e.message.contains(source), "{e}");
        }
        let e = resolve_region(Some("EU-WEST-1"), &env_of(&[]), &none, None).unwrap_err();
        assert!(e.message.contains("`region`"), "{e}");
        let arn = ArnRegion {
            arn: "arn:aws:kinesis:eu-west-1:222222222222:stream/s",
            region: "eu-west-1",
        };
        assert_eq!(
            resolve_region(None, &env_of(&[]), &none, Some(arn)).unwrap(),
            "eu-west-1",
            "no region set: the ARN's"
        );
        let agreeing = env_of(&[("AWS_REGION", "eu-west-1")]);
        assert_eq!(
            resolve_region(None, &agreeing, &none, Some(arn)).unwrap(),
            "eu-west-1"
        );
        let e = resolve_region(None, &env, &none, Some(arn)).unwrap_err();
        assert!(
            e.message.contains("`us-west-2`")
                && e.message.contains("AWS_REGION")
                && e.message.contains("`eu-west-1`")
                && e.message.contains(arn.arn),
            "{e}"
        );
        let e = resolve_region(Some("us-east-1"), &env_of(&[]), &none, Some(arn)).unwrap_err();
        assert!(e.message.contains("`region` (config or --region)"), "{e}");
        let plain = env_of(&[]);
        assert_eq!(
            resolve_endpoint(None, &plain, "eu-west-1").unwrap(),
            "https://kinesis.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            resolve_endpoint(None, &plain, "cn-north-1").unwrap(),
            "https://kinesis.cn-north-1.amazonaws.com.cn"
        );

        let both = env_of(&[
            ("AWS_ENDPOINT_URL_KINESIS", "http://127.0.0.1:1111/"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:2222"),
        ]);
        assert_eq!(
            resolve_endpoint(Some("http://localhost:4566/"), &both, "x").unwrap(),
            "http://localhost:4566"
        );
        assert_eq!(
            resolve_endpoint(None, &both, "x").unwrap(),
            "http://127.0.0.1:1111"
        );
        let general = env_of(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:2222")]);
        assert_eq!(
            resolve_endpoint(None, &general, "x").unwrap(),
            "http://127.0.0.1:2222"
        );
        let ignored = env_of(&[
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:2222"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        assert_eq!(
            resolve_endpoint(None, &ignored, "eu-west-1").unwrap(),
            "https://kinesis.eu-west-1.amazonaws.com"
        );
        let bad = env_of(&[("AWS_ENDPOINT_URL_KINESIS", "ftp://x")]);
        let e = resolve_endpoint(None, &bad, "x").unwrap_err();
        assert!(
            e.message
                .starts_with("AWS_ENDPOINT_URL_KINESIS must start with http"),
            "{e}"
        );
    }
}
