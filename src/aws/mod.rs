//! What any AWS client needs, whatever the service: credentials from the
//! chain the AWS CLI follows, the region and endpoint, requests signed with
//! SigV4 over HTTP, the network (proxies, TLS, DNS) they travel, and which
//! AWS errors a later attempt may cure.

pub mod access;
pub mod credentials;
pub mod dns;
pub mod environment;
pub mod http;
pub mod network;
pub mod region;
pub mod retry;
pub mod role;
pub mod secret;
pub mod tls;
