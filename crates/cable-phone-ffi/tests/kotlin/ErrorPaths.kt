// The Kotlin bindings against the built library: typed exceptions with their phase, a
// blocking and a suspending authenticator, and cancellation reaching the suspended call.
// Compiled and run by run.sh; prints "ok".
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import uniffi.cable_phone.*

// A relay nothing listens on: no session here gets as far as connecting.
val CONFIG = SessionConfig(relayUrl = "ws://127.0.0.1:9")
// {1: ["FIDO_2_0"]}
val INFO = byteArrayOf(0xa1.toByte(), 0x01, 0x81.toByte(), 0x68, 0x46, 0x49, 0x44, 0x4f, 0x5f, 0x32, 0x5f, 0x30)
// {2: 0, 1: 0}: keys out of canonical order.
val NOT_CANONICAL = byteArrayOf(0xa2.toByte(), 0x02, 0x00, 0x01, 0x00)

class NoAdvertiser : Advertiser {
    override fun start(serviceData: ByteArray) = throw AssertionError("no session here advertises")
    override fun stop() {}
}

class Blocking(private val info: ByteArray) : Authenticator {
    override fun getInfo() = info
    override fun makeCredential(request: ByteArray): ByteArray = throw AuthenticatorException.Status(0x27u)
    override fun getAssertion(request: ByteArray): ByteArray = throw AuthenticatorException.Status(0x2Eu)
}

class Suspending(private val info: ByteArray?) : AsyncAuthenticator {
    val asked = CompletableDeferred<Unit>()
    val cancelled = CompletableDeferred<Unit>()

    override suspend fun getInfo(): ByteArray {
        asked.complete(Unit)
        if (info != null) {
            delay(10)
            return info
        }
        try {
            CompletableDeferred<Unit>().await()
            throw AssertionError("unreachable")
        } catch (e: CancellationException) {
            cancelled.complete(Unit)
            throw e
        }
    }

    override suspend fun makeCredential(request: ByteArray): ByteArray = throw AuthenticatorException.Status(0x27u)
    override suspend fun getAssertion(request: ByteArray): ByteArray = throw AuthenticatorException.Status(0x2Eu)
}

inline fun <reified E : Throwable> expect(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("$what: expected ${E::class.simpleName}, got $e", e)
    }
    throw AssertionError("$what: nothing was thrown")
}

fun main() = runBlocking {
    val http = expect<SessionException.InvalidConfig>("an http:// relay") {
        PhoneSession.fromQr("FIDO:/1", SessionConfig(relayUrl = "http://relay.example"), NoAdvertiser(), Blocking(INFO), null)
    }
    check("scheme" in http.reason) { http.reason }

    val bad = expect<SessionException.Authenticator>("a non-canonical getInfo") {
        PhoneSession.fromQr("FIDO:/1", CONFIG, NoAdvertiser(), Blocking(NOT_CANONICAL), null).run()
    }
    check(bad.phase == Phase.POST_HANDSHAKE) { bad.phase }
    check("canonical" in bad.reason) { bad.reason }

    val qr = expect<SessionException.InvalidQr>("a malformed QR code, after a suspending getInfo") {
        runBlocking {
            PhoneSession.fromQr("FIDO:/1", CONFIG, NoAdvertiser(), asyncAuthenticator(Suspending(INFO)), null).runAsync()
        }
    }
    check(qr.phase == Phase.PARSE_QR) { qr.phase }

    // Cancelling the session cancels the coroutine the binding is waiting on.
    val waiting = Suspending(null)
    val session = PhoneSession.fromQr("FIDO:/1", CONFIG, NoAdvertiser(), asyncAuthenticator(waiting), null)
    val run = async { runCatching { session.runAsync() } }
    withTimeout(10_000) { waiting.asked.await() }
    session.cancel()
    val cancelled = withTimeout(10_000) { run.await() }.exceptionOrNull()
    check(cancelled is SessionException.Cancelled) { "expected Cancelled, got $cancelled" }
    withTimeout(10_000) { waiting.cancelled.await() }

    println("ok")
}
