// Debian's kotlinx-coroutines (1.0.1) predates this marker annotation, which UniFFI's
// generated code opts in to; newer kotlinx-coroutines (1.5+) provides it, and an app
// builds against such a version without this file.
package kotlinx.coroutines

@RequiresOptIn
@Retention(AnnotationRetention.BINARY)
annotation class DelicateCoroutinesApi
