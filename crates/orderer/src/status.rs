//! The one place where errors become Fabric `common.Status` codes
//! (Fabric `broadcast.ClassifyError` and the Deliver status table), and
//! where transport failures become the gRPC statuses grpc-go gives
//! Fabric's clients.

use fabric_protos::common::Status;

use crate::broadcast::BroadcastError;
use crate::consensus::ChainError;
use crate::deliver::DeliverError;
use crate::msgprocessor::ProcessError;
use crate::policy::FilterError;

/// The Fabric status a Broadcast client sees for an error.
pub fn broadcast_status(err: &BroadcastError) -> Status {
    match err {
        BroadcastError::Header(_) => Status::BadRequest,
        BroadcastError::ChannelNotFound(_) => Status::NotFound,
        BroadcastError::NoSystemChannel => Status::BadRequest,
        BroadcastError::NotDirect(_) => Status::BadRequest,
        BroadcastError::ChannelCreation(_) => Status::BadRequest,
        BroadcastError::Maintenance(_) => Status::ServiceUnavailable,
        // Fabric's ClassifyError: only ErrPermissionDenied is FORBIDDEN; an
        // expired identity or a missing policy is BAD_REQUEST.
        BroadcastError::Filter(FilterError::PermissionDenied(_)) => Status::Forbidden,
        BroadcastError::Filter(_) => Status::BadRequest,
        BroadcastError::Chain(ChainError::NotReady(_) | ChainError::Enqueue(_)) => {
            Status::ServiceUnavailable
        }
        BroadcastError::Chain(ChainError::Invalid(_)) => Status::BadRequest,
        BroadcastError::Process(p) => process_status(p),
    }
}

/// The Fabric status of a message the channel's processor refused.
fn process_status(err: &ProcessError) -> Status {
    match err {
        ProcessError::Header(_) | ProcessError::ConfigUpdate(_) | ProcessError::BadConfig(_) => {
            Status::BadRequest
        }
        ProcessError::Maintenance(_) => Status::ServiceUnavailable,
        // Fabric's ClassifyError: only ErrPermissionDenied is FORBIDDEN.
        ProcessError::Filter(FilterError::PermissionDenied(_)) => Status::Forbidden,
        ProcessError::Filter(_) => Status::BadRequest,
    }
}

/// The Fabric status a Deliver client sees for an error.
pub fn deliver_status(err: &DeliverError) -> Status {
    match err {
        DeliverError::Header(_)
        | DeliverError::Timestamp(_)
        | DeliverError::Binding(_)
        | DeliverError::SignedData(_)
        | DeliverError::SeekInfo(_)
        | DeliverError::MissingPosition
        | DeliverError::StopBeforeStart { .. }
        | DeliverError::UnsupportedPosition(_) => Status::BadRequest,
        DeliverError::ChannelNotFound(_) | DeliverError::NotFound(_) => Status::NotFound,
        DeliverError::Forbidden(_) => Status::Forbidden,
        DeliverError::Unavailable(_) => Status::ServiceUnavailable,
        DeliverError::Internal(_) => Status::InternalServerError,
    }
}

/// The gRPC status a Broadcast or Deliver stream ends with when receiving
/// the client's next message failed, as grpc-go reports it to Fabric's
/// handlers (which return it): bytes that are not an `Envelope` are
/// `INTERNAL` ("grpc: failed to unmarshal the received message ..."), a
/// message over `General.MaxRecvMsgSize` is `RESOURCE_EXHAUSTED` ("grpc:
/// received message larger than max ..."). tonic reports the latter as
/// `OUT_OF_RANGE` before reading the message body. Anything else (the
/// client reset the stream, the connection broke) is passed on as is.
pub fn receive_error_status(received: &tonic::Status) -> tonic::Status {
    use tonic::Code;
    match received.code() {
        Code::OutOfRange if received.message().contains("message length too large") => {
            tonic::Status::resource_exhausted(format!(
                "grpc: received message larger than max: {}",
                received.message()
            ))
        }
        Code::Internal if !received.message().starts_with("grpc: ") => {
            tonic::Status::internal(format!(
                "grpc: failed to unmarshal the received message: {}",
                received.message()
            ))
        }
        _ => received.clone(),
    }
}

/// The gRPC status of a stream refused because `General.Limits.MaxStreams`
/// streams are open.
pub fn stream_limit_status(max_streams: usize) -> tonic::Status {
    tonic::Status::resource_exhausted(format!(
        "too many concurrent streams: the orderer serves at most {max_streams} (General.Limits.MaxStreams)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn receive_errors_get_grpc_go_codes() {
        let big = tonic::Status::out_of_range(
            "Error, decoded message length too large: found 104857700 bytes, the limit is: 104857600 bytes",
        );
        let st = receive_error_status(&big);
        assert_eq!(st.code(), Code::ResourceExhausted);
        assert!(st.message().contains("104857700"), "{}", st.message());

        let garbage =
            tonic::Status::internal("failed to decode Protobuf message: invalid wire type");
        let st = receive_error_status(&garbage);
        assert_eq!(st.code(), Code::Internal);
        assert!(st.message().starts_with("grpc: failed to unmarshal"));

        let gone = tonic::Status::cancelled("h2 protocol error: stream reset");
        assert_eq!(receive_error_status(&gone).code(), Code::Cancelled);
    }
}
