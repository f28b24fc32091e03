#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ifs_fuzz::folder_record(data);
});
