//! ifs-store
