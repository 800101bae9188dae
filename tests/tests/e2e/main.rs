//! End to end over real HTTP and WebSocket connections: the function binaries behind the local
//! gateway on DynamoDB Local. Most tests share one stack (`parley_tests::stack`); a module that needs
//! other parameters, faults or a changed template starts its own. One binary for all of them.

mod admin;
mod attachments;
mod bans;
mod blocks;
mod caching;
mod contract_fuzz;
mod delivery;
mod faults;
mod fuzz_findings;
mod groups;
mod http_api;
mod iam;
mod invitations;
mod lambda_limits;
mod mutes;
mod names;
mod operations;
mod pins;
mod push;
mod rate_limits;
mod reports;
mod restart;
mod search;
mod sessions;
mod signin_limits;
mod slow_mode;
mod sync;
mod threads_reactions;
mod token_secret;
mod ws;
