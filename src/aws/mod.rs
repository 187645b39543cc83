//! What any AWS client needs, whatever the service: credentials from the
//! chain the AWS CLI follows, the region and endpoint, requests signed with
//! SigV4 over HTTP, the network (proxies, TLS, DNS) they travel, and which
//! AWS errors a later attempt may cure.

pub(crate) mod access;
pub mod credentials;
mod dns;
pub(crate) mod environment;
pub mod http;
pub(crate) mod network;
pub(crate) mod region;
pub(crate) mod retry;
pub(crate) mod role;
pub mod secret;
mod tls;
