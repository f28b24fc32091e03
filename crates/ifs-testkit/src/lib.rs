//! ifs-testkit
