using TorchSharp;

namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>Moves a tensor's raw bytes between a stream and its native memory without a managed copy.</summary>
internal static class TensorBytes
{
    // A span covers at most int.MaxValue bytes, so larger tensors move in slices of a flat view.
    private const long SliceBytes = 1L << 30;

    /// <summary>Fills <paramref name="destination"/> (contiguous, CPU) with exactly its size in bytes from <paramref name="source"/>.</summary>
    /// <exception cref="EndOfStreamException">The stream ends first.</exception>
    public static void ReadExactly(Stream source, torch.Tensor destination)
    {
        EnsureLittleEndian();
        long elements = destination.numel();
        if (elements == 0)
            return;

        if (elements * destination.ElementSize <= SliceBytes)
        {
            source.ReadExactly(destination.bytes);
            return;
        }

        using var flat = destination.view(-1);
        long step = SliceBytes / destination.ElementSize;
        for (long start = 0; start < elements; start += step)
        {
            using var slice = flat.narrow(0, start, Math.Min(step, elements - start));
            source.ReadExactly(slice.bytes);
        }
    }

    /// <summary>Writes the bytes of <paramref name="source"/> (contiguous, CPU) to <paramref name="destination"/>.</summary>
    public static void Write(Stream destination, torch.Tensor source)
    {
        EnsureLittleEndian();
        long elements = source.numel();
        if (elements == 0)
            return;

        if (elements * source.ElementSize <= SliceBytes)
        {
            destination.Write(source.bytes);
            return;
        }

        using var flat = source.view(-1);
        long step = SliceBytes / source.ElementSize;
        for (long start = 0; start < elements; start += step)
        {
            using var slice = flat.narrow(0, start, Math.Min(step, elements - start));
            destination.Write(slice.bytes);
        }
    }

    // Both checkpoint formats store little-endian data; copying it raw is only right on a little-endian machine.
    private static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("Checkpoint files are little-endian; this reader runs only on little-endian machines.");
    }
}
