//! WebAuthn JSON in and out, and the client data a ceremony signs over.

pub mod client_data;
pub mod large_blob;
pub mod options;
pub mod prf;
pub mod response;
