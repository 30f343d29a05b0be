//! cdc-schema
