// The Swift bindings against the built library: typed errors with their phase, a blocking
// and an async authenticator, and cancel() reaching the async call in flight. Compiled
// together with bindings/swift/cable_phone.swift and run by run.sh; prints "ok".
import Foundation

// A relay nothing listens on: no session here gets as far as connecting.
let config = SessionConfig(relayUrl: "ws://127.0.0.1:9")
// {1: ["FIDO_2_0"]}
let info = Data([0xa1, 0x01, 0x81, 0x68, 0x46, 0x49, 0x44, 0x4f, 0x5f, 0x32, 0x5f, 0x30])
// {2: 0, 1: 0}: keys out of canonical order.
let notCanonical = Data([0xa2, 0x02, 0x00, 0x01, 0x00])

func fail(_ what: String) -> Never {
    FileHandle.standardError.write("\(what)\n".data(using: .utf8)!)
    exit(1)
}

final class NoAdvertiser: Advertiser, @unchecked Sendable {
    func start(serviceData: Data) throws { fail("no session here advertises") }
    func stop() {}
}

final class Blocking: Authenticator, @unchecked Sendable {
    let info: Data
    init(_ info: Data) { self.info = info }
    func getInfo() throws -> Data { info }
    func makeCredential(request: Data) throws -> Data { throw AuthenticatorError.Status(code: 0x27) }
    func getAssertion(request: Data) throws -> Data { throw AuthenticatorError.Status(code: 0x2E) }
}

/// Answers getInfo after a pause, or (with no info) waits until its task is cancelled.
final class Suspending: AsyncAuthenticator, @unchecked Sendable {
    let info: Data?
    let lock = NSLock()
    var asked = false
    var cancelled = false
    init(_ info: Data?) { self.info = info }

    func getInfo() async throws -> Data {
        lock.withLock { asked = true }
        if let info {
            try await Task.sleep(nanoseconds: 10_000_000)
            return info
        }
        do {
            while true { try await Task.sleep(nanoseconds: 10_000_000) }
        } catch is CancellationError {
            lock.withLock { cancelled = true }
            throw CancellationError()
        }
    }

    func makeCredential(request: Data) async throws -> Data { throw AuthenticatorError.Status(code: 0x27) }
    func getAssertion(request: Data) async throws -> Data { throw AuthenticatorError.Status(code: 0x2E) }
}

func eventually(_ what: String, _ condition: () -> Bool) async {
    for _ in 0..<1000 {
        if condition() { return }
        try? await Task.sleep(nanoseconds: 10_000_000)
    }
    fail("timed out waiting for \(what)")
}

do {
    _ = try PhoneSession.fromQr(
        qrText: "FIDO:/1", config: SessionConfig(relayUrl: "http://relay.example"),
        advertiser: NoAdvertiser(), authenticator: Blocking(info), listener: nil)
    fail("an http:// relay was accepted")
} catch SessionError.InvalidConfig(let reason) {
    guard reason.contains("scheme") else { fail(reason) }
}

do {
    _ = try PhoneSession.fromQr(
        qrText: "FIDO:/1", config: config, advertiser: NoAdvertiser(),
        authenticator: Blocking(notCanonical), listener: nil
    ).run()
    fail("a non-canonical getInfo was accepted")
} catch SessionError.Authenticator(let phase, let reason) {
    guard phase == .postHandshake, reason.contains("canonical") else { fail("\(phase): \(reason)") }
}

do {
    _ = try await PhoneSession.fromQr(
        qrText: "FIDO:/1", config: config, advertiser: NoAdvertiser(),
        authenticator: asyncAuthenticator(app: Suspending(info)), listener: nil
    ).runAsync()
    fail("a malformed QR code was accepted")
} catch SessionError.InvalidQr(let phase, _) {
    guard phase == .parseQr else { fail("\(phase)") }
}

// Cancelling the session cancels the task the binding is waiting on.
let waiting = Suspending(nil)
let session = try PhoneSession.fromQr(
    qrText: "FIDO:/1", config: config, advertiser: NoAdvertiser(),
    authenticator: asyncAuthenticator(app: waiting), listener: nil)
let run = Task { try await session.runAsync() }
await eventually("getInfo to be asked") { waiting.lock.withLock { waiting.asked } }
session.cancel()
switch await run.result {
case .failure(SessionError.Cancelled(let phase, _)) where phase == .postHandshake: break
case let other: fail("expected Cancelled, got \(other)")
}
await eventually("the getInfo task to be cancelled") { waiting.lock.withLock { waiting.cancelled } }

print("ok")
