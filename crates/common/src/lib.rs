pub use fabric_protos;
