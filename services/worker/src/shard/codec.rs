//! How shard proposals are stored in the Raft log and sent to followers: a
//! version byte, then a protobuf message — vectors as packed little-endian
//! floats and payloads as raw bytes, about a quarter of the JSON this
//! replaced. Entries written before (JSON, starting with `{`) still decode.
//! The size of an encoded proposal is known before encoding
//! ([`encoded_len`]), so oversize writes are refused before they are
//! proposed. No I/O.

use prost::Message;
use vectron_proto::common::v1 as common;
use vectron_proto::worker::v1 as pb;
use vectron_raft::PayloadCodec;

use super::command::{PointRecord, RequestId, ShardCommand, ShardProposal};

/// First byte of a binary proposal (JSON entries start with `{`).
const BINARY_V1: u8 = 1;

/// The binary form of a proposal.
#[derive(Clone, PartialEq, prost::Message)]
struct ProposalMessage {
    /// 16 bytes, or empty when the proposal names no request.
    #[prost(bytes = "vec", tag = "1")]
    request_id: Vec<u8>,
    #[prost(oneof = "CommandMessage", tags = "2, 3, 4")]
    command: Option<CommandMessage>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum CommandMessage {
    #[prost(message, tag = "2")]
    Upsert(PointsMessage),
    #[prost(message, tag = "3")]
    Delete(IdsMessage),
    /// `vectron.common.v1.Filter`, protobuf-encoded.
    #[prost(bytes = "vec", tag = "4")]
    DeleteByFilter(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message)]
struct PointsMessage {
    #[prost(message, repeated, tag = "1")]
    points: Vec<pb::Point>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct IdsMessage {
    #[prost(message, repeated, tag = "1")]
    ids: Vec<common::PointId>,
}

fn to_message(proposal: &ShardProposal) -> ProposalMessage {
    let command = match &proposal.command {
        ShardCommand::Upsert { points } => CommandMessage::Upsert(PointsMessage {
            points: points
                .iter()
                .map(|p| pb::Point {
                    id: Some(crate::point_id::to_pb(&p.id)),
                    vector: p.vector.clone(),
                    payload_json: p.payload.clone(),
                })
                .collect(),
        }),
        ShardCommand::Delete { ids } => CommandMessage::Delete(IdsMessage {
            ids: ids.iter().map(crate::point_id::to_pb).collect(),
        }),
        ShardCommand::DeleteByFilter { filter } => CommandMessage::DeleteByFilter(filter.clone()),
    };
    ProposalMessage {
        request_id: proposal.request.map(RequestId::to_wire).unwrap_or_default(),
        command: Some(command),
    }
}

fn from_message(message: ProposalMessage) -> Result<ShardProposal, String> {
    let request = RequestId::from_wire(&message.request_id)?;
    let id = |id: Option<&common::PointId>| {
        crate::point_id::from_pb(id).ok_or_else(|| "a point without an id".to_owned())
    };
    let command = match message.command.ok_or("a proposal without a command")? {
        CommandMessage::Upsert(points) => ShardCommand::Upsert {
            points: points
                .points
                .into_iter()
                .map(|p| {
                    Ok(PointRecord {
                        id: id(p.id.as_ref())?,
                        vector: p.vector,
                        payload: p.payload_json,
                    })
                })
                .collect::<Result<_, String>>()?,
        },
        CommandMessage::Delete(ids) => ShardCommand::Delete {
            ids: ids
                .ids
                .iter()
                .map(|i| id(Some(i)))
                .collect::<Result<_, String>>()?,
        },
        CommandMessage::DeleteByFilter(filter) => ShardCommand::DeleteByFilter { filter },
    };
    Ok(ShardProposal { request, command })
}

/// Bytes `proposal` takes in the log.
pub fn encoded_len(proposal: &ShardProposal) -> usize {
    1 + to_message(proposal).encoded_len()
}

impl PayloadCodec for ShardProposal {
    fn encode_payload(&self) -> Vec<u8> {
        let message = to_message(self);
        let mut bytes = Vec::with_capacity(1 + message.encoded_len());
        bytes.push(BINARY_V1);
        message
            .encode(&mut bytes)
            .expect("a Vec grows to fit any message");
        bytes
    }

    fn decode_payload(bytes: &[u8]) -> Result<Self, String> {
        match bytes.first() {
            Some(&BINARY_V1) => ProposalMessage::decode(&bytes[1..])
                .map_err(|e| e.to_string())
                .and_then(from_message),
            // Entries logged before the binary encoding: a JSON proposal, or
            // a bare JSON command before proposals carried request ids.
            Some(b'{') => serde_json::from_slice::<ShardProposal>(bytes).or_else(|error| {
                serde_json::from_slice::<ShardCommand>(bytes)
                    .map(ShardProposal::from)
                    .map_err(|_| error.to_string())
            }),
            Some(other) => Err(format!("unknown proposal encoding {other:#04x}")),
            None => Err("an empty proposal".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vectron_ids::PointId;

    fn upsert() -> ShardProposal {
        ShardProposal {
            request: Some(RequestId(u128::MAX - 7)),
            command: ShardCommand::Upsert {
                points: vec![
                    PointRecord {
                        id: PointId::Num(3),
                        vector: vec![0.5, -1.25, f32::MIN_POSITIVE, 1e30],
                        payload: br#"{"a":[1,2,3]}"#.to_vec(),
                    },
                    PointRecord {
                        id: PointId::Str("é-1".into()),
                        vector: vec![0.0; 4],
                        payload: Vec::new(),
                    },
                ],
            },
        }
    }

    #[test]
    fn every_command_round_trips_in_binary() {
        let proposals = [
            upsert(),
            ShardProposal {
                request: None,
                command: ShardCommand::Delete {
                    ids: vec![PointId::Num(1), PointId::Str("x".into())],
                },
            },
            ShardProposal {
                request: Some(RequestId(1)),
                command: ShardCommand::DeleteByFilter {
                    filter: vec![1, 2, 3],
                },
            },
        ];
        for proposal in proposals {
            let bytes = proposal.encode_payload();
            assert_eq!(bytes[0], BINARY_V1);
            assert_eq!(bytes.len(), encoded_len(&proposal));
            assert_eq!(ShardProposal::decode_payload(&bytes), Ok(proposal));
        }
    }

    #[test]
    fn binary_is_much_smaller_than_json_for_vectors() {
        let proposal = ShardProposal {
            request: None,
            command: ShardCommand::Upsert {
                points: (0..100)
                    .map(|i| PointRecord {
                        id: PointId::Num(i),
                        vector: (0..384).map(|j| (i * j) as f32 / 7.0).collect(),
                        payload: br#"{"k":"v"}"#.to_vec(),
                    })
                    .collect(),
            },
        };
        let binary = proposal.encode_payload().len();
        let json = serde_json::to_vec(&proposal).expect("json").len();
        assert!(binary * 2 < json, "binary {binary} bytes, JSON {json}");
    }

    #[test]
    fn json_entries_of_earlier_versions_still_decode() {
        let proposal = upsert();
        let json = serde_json::to_vec(&proposal).expect("json");
        assert_eq!(ShardProposal::decode_payload(&json), Ok(proposal.clone()));
        let bare = serde_json::to_vec(&proposal.command).expect("json");
        let decoded = ShardProposal::decode_payload(&bare).expect("a bare command");
        assert_eq!(decoded.request, None);
        assert_eq!(decoded.command, proposal.command);
        assert!(ShardProposal::decode_payload(b"{}").is_err());
        assert!(ShardProposal::decode_payload(&[]).is_err());
        assert!(ShardProposal::decode_payload(&[9, 1, 2]).is_err());
    }
}
