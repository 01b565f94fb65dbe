//! Vitals' gRPC API, package `vitals.v1`, generated from `proto/vitals/v1/`.
//!
//! Shared by the server, the tests and tools, so all speak exactly one schema.

#![allow(missing_debug_implementations, clippy::all, reason = "generated code")]

/// Generated messages, clients and servers of `vitals.v1`.
pub mod v1 {
    tonic::include_proto!("vitals.v1");
}

/// The encoded `FileDescriptorSet` of every Vitals proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vitals_v1_descriptor");
