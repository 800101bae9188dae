//! The gateway over real sockets with the fixture functions (tests/fixtures/), and the run command
//! itself: one test binary (each one more costs a link of about 60 MB).

mod cli;
mod cloudwatch;
mod faults;
mod gateway;
mod sqs;
mod sqs_fifo;
mod sqs_support;
mod streams;
