using System.Runtime.InteropServices;

namespace MLNetTransformerExtensions.Runtime;

/// <summary>
/// Hands native memory that libtorch has freed back to the operating system. glibc keeps freed blocks in its heaps for
/// reuse and returns little of them on its own: after fine-tuning, most of the resident memory the training steps
/// needed (activations, gradients of batches of every length) stays with the process although nothing uses it, and a
/// thread that scores afterwards cannot reuse it (each thread allocates from its own heap), so it adds its own on top.
/// </summary>
internal static class NativeHeap
{
    private static readonly MallocTrim? s_trim = FindMallocTrim();

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    private delegate int MallocTrim(nuint pad);

    /// <summary>Returns the free pages of every glibc heap to the OS (<c>malloc_trim(0)</c>); does nothing elsewhere.</summary>
    /// <returns>Whether any memory was returned.</returns>
    public static bool Trim() => s_trim is not null && s_trim(0) != 0;

    private static MallocTrim? FindMallocTrim()
    {
        // glibc only: musl and other C libraries have no malloc_trim, and other systems manage this themselves.
        if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out var libc))
        {
            return null;
        }

        return NativeLibrary.TryGetExport(libc, "malloc_trim", out var address) ? Marshal.GetDelegateForFunctionPointer<MallocTrim>(address) : null;
    }
}
