//! The one place where errors become Fabric `common.Status` codes
//! (Fabric `broadcast.ClassifyError` and the Deliver status table).

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
