//! The handlers in this process, each test on its own table of one shared DynamoDB Local: what the
//! functions do, without the gateway. One binary (a link of its own costs about 90 MB and seconds).

mod accounts;
mod alarms;
mod attachments_quota;
mod ban_races;
mod connections;
mod contract_asyncapi;
mod contract_openapi;
mod conversation_list;
mod conversations;
mod docs;
mod health;
mod invitations;
mod layering;
mod message_costs;
mod messages;
mod ordering;
mod rate_limits;
mod samples;
mod search_cost;
mod sync;
mod users;
mod wallet;
