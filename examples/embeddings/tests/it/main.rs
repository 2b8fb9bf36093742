//! The embeddings example: one test binary (each file a module). The image test (`image.rs`) is
//! a binary of its own.

mod device;
mod hub;
mod minilm;
mod modes;
mod runpod_hub;
mod worker;
