//! UniFFI's binding generator, built against the same UniFFI version as the library.
fn main() {
    uniffi::uniffi_bindgen_main()
}
