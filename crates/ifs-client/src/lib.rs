//! ifs-client
