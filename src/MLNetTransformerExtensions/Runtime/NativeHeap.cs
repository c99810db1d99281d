using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Runtime;

/// <summary>
/// Keeps the native memory libtorch allocates through glibc's <c>malloc</c> close to what is in use. glibc keeps freed
/// blocks in its heaps for reuse and returns little of them on its own, and two of its habits hurt training:
/// <list type="bullet">
/// <item>Freed memory stays resident: after fine-tuning, most of what the steps needed (activations and gradients of
/// batches of every length) stays with the process although nothing uses it, and a thread that scores afterwards
/// cannot reuse it (each thread allocates from its own heap). <see cref="Trim"/> returns it.</item>
/// <item>Its threshold for giving a large block its own mapping rises to the size of the largest block freed (up to
/// 32 MB). Then every step's transient copies the size of the largest parameter (the word-embedding gradient before
/// it is accumulated, the optimizer's temporaries) are cut from the heap between shorter-lived activations of varying
/// sizes, and the heap fragments: measured on a 4.5 M-parameter BERT (12.6 MB embedding matrix) over one SST-2 epoch,
/// peak RSS 741–1,232 MB from run to run with at most ≈ 330 MB allocated at any time.
/// <see cref="PrepareForTraining"/> fixes the threshold at 3/4 of that size, which held the peak at 752–765 MB at the same
/// speed. (At 1/2, bert-mini's 16.8 MB feed-forward activations got mappings too, and training lost 7 %.)</item>
/// </list>
/// Both do nothing off glibc (other C libraries and systems manage this themselves).
/// </summary>
internal static class NativeHeap
{
    private const int MallocTrimThreshold = -1; // M_TRIM_THRESHOLD
    private const int MallocMmapThreshold = -3; // M_MMAP_THRESHOLD

    /// <summary>glibc's smallest mapping threshold (its default) and the largest it accepts on 64-bit systems.</summary>
    private const long SmallestMapThreshold = 128 * 1024, LargestMapThreshold = 32 * 1024 * 1024;

    private static readonly GlibcMalloc? s_glibc = GlibcMalloc.Find();

    /// <summary>Returns the free pages of every glibc heap to the OS (<c>malloc_trim(0)</c>).</summary>
    /// <returns>Whether any memory was returned.</returns>
    public static bool Trim() => s_glibc is not null && s_glibc.Trim(0) != 0;

    /// <summary>
    /// Before training <paramref name="model"/>: new blocks of at least 3/4 of its largest parameter's size get their
    /// own mapping, returned to the OS when freed, instead of fragmenting the heap (see the class remarks). (glibc still
    /// serves such a block from free heap memory when it holds a large enough piece.) Leaves the
    /// setting alone when the user tuned glibc's allocator through its environment variables.
    /// </summary>
    /// <param name="model">The model about to be trained.</param>
    /// <returns>The threshold set, in bytes, or null when nothing was changed.</returns>
    public static long? PrepareForTraining(nn.Module model)
    {
        if (s_glibc is null || UserTunedMalloc())
        {
            return null;
        }

        var largest = model.parameters().Select(p => p.NumberOfElements * p.ElementSize).DefaultIfEmpty(0).Max();
        var threshold = Math.Clamp(largest * 3 / 4, SmallestMapThreshold, LargestMapThreshold);
        // Fixing the mapping threshold also fixes the trim threshold; keep it where glibc's own adjustment puts it (2×).
        return s_glibc.Option(MallocMmapThreshold, (int)threshold) != 0 && s_glibc.Option(MallocTrimThreshold, (int)(2 * threshold)) != 0
            ? threshold
            : null;
    }

    private static bool UserTunedMalloc() =>
        Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is not null
        || Environment.GetEnvironmentVariable("MALLOC_TRIM_THRESHOLD_") is not null
        || Environment.GetEnvironmentVariable("GLIBC_TUNABLES")?.Contains("glibc.malloc.", StringComparison.Ordinal) == true;

    /// <summary>glibc's <c>malloc_trim</c> and <c>mallopt</c>, found at run time.</summary>
    private sealed class GlibcMalloc
    {
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        public delegate int TrimFunction(nuint pad);

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        public delegate int OptionFunction(int parameter, int value);

        private GlibcMalloc(TrimFunction trim, OptionFunction option) => (Trim, Option) = (trim, option);

        public TrimFunction Trim { get; }

        public OptionFunction Option { get; }

        public static GlibcMalloc? Find()
        {
            // glibc only: musl and other C libraries have neither function.
            if (!OperatingSystem.IsLinux() || !NativeLibrary.TryLoad("libc.so.6", out var libc)
                || !NativeLibrary.TryGetExport(libc, "malloc_trim", out var trim) || !NativeLibrary.TryGetExport(libc, "mallopt", out var option))
            {
                return null;
            }

            return new GlibcMalloc(Marshal.GetDelegateForFunctionPointer<TrimFunction>(trim), Marshal.GetDelegateForFunctionPointer<OptionFunction>(option));
        }
    }
}
