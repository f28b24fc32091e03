#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ifs_fuzz::dir_record(data);
});
