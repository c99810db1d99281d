using System.IO.Compression;
using System.Text;
using MLNetTransformerExtensions.Runtime;
using TorchSharp;

namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>
/// Reads PyTorch state-dict checkpoints (<c>pytorch_model.bin</c>) as written by <c>torch.save</c> since
/// PyTorch 1.6: a zip archive holding <c>&lt;folder&gt;/data.pkl</c> (the pickled OrderedDict) and one raw
/// little-endian file per storage under <c>&lt;folder&gt;/data/</c>.
/// </summary>
/// <remarks>
/// The pickle is read by a restricted unpickler that allows only the globals a state dict needs
/// (<c>collections.OrderedDict</c>, <c>torch._utils._rebuild_tensor_v2</c>, <c>torch._utils._rebuild_parameter</c>
/// and the <c>torch.*Storage</c> types) and refuses any other (<c>os.system</c>, <c>builtins.eval</c>, ...) at the
/// opcode that names it, without running anything. Storage sizes are checked against the archive before memory is
/// allocated, and every tensor view against its storage.
/// </remarks>
public static class PyTorchCheckpointFile
{
    // A state dict's pickle holds names and shapes only (about 200 bytes per tensor): 256 MB is far beyond any model.
    private const long MaxPickleBytes = 256L << 20;

    /// <summary>Reads every tensor of a <c>torch.save</c>d state dict onto the CPU.</summary>
    /// <param name="path">The <c>.bin</c> (or <c>.pt</c>, <c>.pth</c>) file.</param>
    /// <returns>
    /// The tensors by name, in the file's order: floating-point storages as float32, integer storages as int64,
    /// bool as bool. Names the file ties to the same data (tied weights) share memory, as in PyTorch; every other
    /// tensor owns its own. The caller owns them; they join the caller's dispose scope if one is open.
    /// </returns>
    /// <exception cref="CheckpointException">
    /// The file is damaged, truncated, in the legacy pre-1.6 format, not a state dict, or refers to a Python global
    /// that a state dict does not need.
    /// </exception>
    public static Dictionary<string, torch.Tensor> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        TorchRuntime.EnsureInitialized();

        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 4096, FileOptions.RandomAccess);
        CheckZipSignature(file, path);

        ZipArchive archive;
        try
        {
            archive = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointException(path, null, $"the zip archive is damaged or truncated ({e.Message}).", e);
        }

        using (archive)
        {
            try
            {
                var layout = ArchiveLayout.Find(archive, path);
                var pickle = ReadPickle(layout.Pickle, path);
                object? root;
                try
                {
                    root = RestrictedUnpickler.Load(pickle, new TorchPicklePolicy());
                }
                catch (InvalidDataException e)
                {
                    throw new CheckpointException(path, null, $"{layout.Pickle.FullName}: {e.Message}", e);
                }

                return Materialize(StateDictEntries(root, path), layout, file.Length, path);
            }
            catch (InvalidDataException e)
            {
                // Raised by System.IO.Compression while inflating or locating an entry's data.
                throw new CheckpointException(path, null, $"the zip archive is damaged ({e.Message}).", e);
            }
        }
    }

    private static void CheckZipSignature(FileStream file, string path)
    {
        Span<byte> signature = stackalloc byte[4];
        int read = file.ReadAtLeast(signature, signature.Length, throwOnEndOfStream: false);
        file.Position = 0;
        if (read == 4 && signature.SequenceEqual("PK\u0003\u0004"u8))
            return;

        // Legacy torch.save output is a bare pickle stream, which starts with the PROTO opcode.
        if (read > 0 && signature[0] == 0x80)
            throw new CheckpointException(path, null,
                "this is the legacy (before PyTorch 1.6) torch.save format, which is not read here. Load it in Python and save it again "
                + "with torch.save, or better as safetensors with model.save_pretrained(folder, safe_serialization=True).");
        throw new CheckpointException(path, null, "this is not a PyTorch checkpoint: torch.save writes a zip archive, and this file does not start like one.");
    }

    private static byte[] ReadPickle(ZipArchiveEntry entry, string path)
    {
        if (entry.Length > MaxPickleBytes)
            throw new CheckpointException(path, null, $"{entry.FullName} claims {entry.Length} bytes, more than the {MaxPickleBytes} a state dict's pickle could need.");

        // Copy what is really there (never more than the limit), not what the archive claims.
        using var source = OpenEntry(entry, path, null);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = source.Read(chunk)) > 0)
        {
            if (buffer.Length + read > MaxPickleBytes)
                throw new CheckpointException(path, null, $"{entry.FullName} holds more than the {MaxPickleBytes} bytes a state dict's pickle could need.");
            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static Stream OpenEntry(ZipArchiveEntry entry, string path, string? tensor)
    {
        try
        {
            return entry.Open();
        }
        catch (InvalidDataException e)
        {
            throw new CheckpointException(path, tensor, $"archive entry {entry.FullName} cannot be opened ({e.Message}).", e);
        }
    }

    private static List<(string Name, TensorReference Tensor)> StateDictEntries(object? root, string path)
    {
        if (root is not PickleDict dict)
            throw new CheckpointException(path, null,
                $"the pickle holds a {RestrictedUnpickler.Describe(root)}, not a state dict (a dict of tensors). Save model.state_dict(), not the model.");

        var entries = new List<(string, TensorReference)>(dict.Items.Count);
        foreach (var (key, value) in dict.Items)
        {
            string name = key as string ?? throw new CheckpointException(path, null, $"the state dict has a non-string key {key}.");
            if (value is not TensorReference tensor)
                throw new CheckpointException(path, name, $"the state dict maps this name to a {RestrictedUnpickler.Describe(value)}, not a tensor.");
            entries.Add((name, tensor));
        }

        return entries;
    }

    private static Dictionary<string, torch.Tensor> Materialize(List<(string Name, TensorReference Tensor)> entries, ArchiveLayout layout, long fileLength, string path)
    {
        // Names that share one view (tied weights) share its memory, as in PyTorch. Distinct views of a storage must
        // not cover more elements than it has: real checkpoints slice storages, they never overlap them, and this
        // bounds the memory a file can make us allocate to a small multiple of its size.
        var views = new Dictionary<string, torch.Tensor>(StringComparer.Ordinal);
        var covered = new Dictionary<StorageReference, long>();
        var distinctViews = entries.Select(e => e.Tensor).DistinctBy(ViewKey).GroupBy(t => t.Storage).ToDictionary(g => g.Key, g => g.Count());
        var storages = new Dictionary<StorageReference, torch.Tensor>();

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var tensors = new Dictionary<string, torch.Tensor>(entries.Count, StringComparer.Ordinal);
        foreach (var (name, reference) in entries)
        {
            string key = ViewKey(reference);
            if (views.TryGetValue(key, out var shared))
            {
                tensors.Add(name, shared.detach());
                continue;
            }

            long elements = CheckView(reference, path, name);
            long total = covered.GetValueOrDefault(reference.Storage) + elements;
            if (total > reference.Storage.ElementCount)
                throw new CheckpointException(path, name,
                    $"the tensors viewing storage '{reference.Storage.Key}' together cover {total} elements, more than its {reference.Storage.ElementCount}: views overlap.");
            covered[reference.Storage] = total;

            if (!storages.TryGetValue(reference.Storage, out var storage))
            {
                storage = LoadStorage(reference.Storage, layout, fileLength, path, name);
                storages.Add(reference.Storage, storage);
            }

            var view = storage.as_strided(reference.Size, reference.Stride, reference.Offset);
            var loaded = view.to_type(LoadedType(reference.Storage.DType));

            // Keep the storage itself only when this view is all of it; otherwise copy out, so a slice does not
            // hold its whole storage alive.
            bool aliasesStorage = loaded.dtype == storage.dtype && view.is_contiguous();
            bool wholeStorage = reference.Offset == 0 && elements == reference.Storage.ElementCount && distinctViews[reference.Storage] == 1;
            var tensor = aliasesStorage && !wholeStorage ? loaded.clone() : loaded.contiguous();
            views.Add(key, tensor);
            tensors.Add(name, tensor);
        }

        foreach (var tensor in tensors.Values)
            tensor.MoveToOuterDisposeScope();
        return tensors;
    }

    private static string ViewKey(TensorReference t) =>
        $"{t.Storage.Key}|{t.Offset}|{string.Join(',', t.Size)}|{string.Join(',', t.Stride)}";

    private static torch.Tensor LoadStorage(StorageReference storage, ArchiveLayout layout, long fileLength, string path, string tensor)
    {
        if (!layout.Storages.TryGetValue(storage.Key, out var entry))
            throw new CheckpointException(path, tensor, $"its storage '{storage.Key}' is missing from the archive (expected {layout.Folder}/data/{storage.Key}).");

        long elementSize = ElementSize(storage.DType);
        long bytes;
        try
        {
            bytes = checked(storage.ElementCount * elementSize);
        }
        catch (OverflowException)
        {
            throw new CheckpointException(path, tensor, $"its storage '{storage.Key}' claims {storage.ElementCount} elements, more than any file can hold.");
        }

        // torch.save stores storages uncompressed, so the entry's size is bounded by the file: checking the claim
        // against it first means no allocation can exceed what the file really holds.
        if (entry.CompressedLength != entry.Length || entry.Length > fileLength)
            throw new CheckpointException(path, tensor, $"its storage entry {entry.FullName} is compressed or larger than the file; torch.save writes storages uncompressed.");
        if (entry.Length != bytes)
            throw new CheckpointException(path, tensor,
                $"its storage '{storage.Key}' is said to hold {storage.ElementCount} {storage.TypeName} elements ({bytes} bytes), but {entry.FullName} has {entry.Length} bytes.");

        var data = torch.empty(storage.ElementCount, storage.DType);
        using var source = OpenEntry(entry, path, tensor);
        try
        {
            TensorBytes.ReadExactly(source, data);
        }
        catch (Exception e) when (e is EndOfStreamException or InvalidDataException)
        {
            throw new CheckpointException(path, tensor, $"its storage entry {entry.FullName} ends early or is damaged ({e.Message}).", e);
        }

        return data;
    }

    // as_strided on a hostile view could read outside the storage's memory: every reachable index must be inside.
    // Returns the view's element count.
    private static long CheckView(TensorReference tensor, string path, string name)
    {
        string shape = $"size [{string.Join(", ", tensor.Size)}], stride [{string.Join(", ", tensor.Stride)}], offset {tensor.Offset}";
        if (tensor.Size.Length != tensor.Stride.Length)
            throw new CheckpointException(path, name, $"{shape}: size and stride have different lengths.");
        if (tensor.Offset < 0 || tensor.Size.Any(s => s < 0) || tensor.Stride.Any(s => s < 0))
            throw new CheckpointException(path, name, $"{shape}: sizes, strides and offset must not be negative.");

        try
        {
            long elements = tensor.Size.Aggregate(1L, (product, size) => checked(product * size));
            long last = tensor.Offset;
            if (elements > 0)
            {
                for (int i = 0; i < tensor.Size.Length; i++)
                    last = checked(last + (tensor.Size[i] - 1) * tensor.Stride[i]);
            }

            bool inside = elements == 0 ? tensor.Offset <= tensor.Storage.ElementCount : last < tensor.Storage.ElementCount;
            if (!inside)
                throw new CheckpointException(path, name, $"{shape} reaches past the end of its storage '{tensor.Storage.Key}' ({tensor.Storage.ElementCount} elements).");
            return elements;
        }
        catch (OverflowException)
        {
            throw new CheckpointException(path, name, $"{shape} overflows 64-bit indexing.");
        }
    }

    private static torch.ScalarType LoadedType(torch.ScalarType stored) => stored switch
    {
        torch.ScalarType.Float64 or torch.ScalarType.Float32 or torch.ScalarType.Float16 or torch.ScalarType.BFloat16 => torch.ScalarType.Float32,
        torch.ScalarType.Bool => torch.ScalarType.Bool,
        _ => torch.ScalarType.Int64,
    };

    private static long ElementSize(torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
        _ => 1,
    };

    /// <summary>Where data.pkl and the storages are: torch.save puts everything under one top folder whose name varies.</summary>
    private sealed record ArchiveLayout(string Folder, ZipArchiveEntry Pickle, Dictionary<string, ZipArchiveEntry> Storages)
    {
        public static ArchiveLayout Find(ZipArchive archive, string path)
        {
            var pickles = archive.Entries.Where(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1).ToList();
            if (pickles.Count != 1)
                throw new CheckpointException(path, null, pickles.Count == 0
                    ? "the archive has no <folder>/data.pkl, so it is not a torch.save checkpoint."
                    : $"the archive has {pickles.Count} data.pkl files ({string.Join(", ", pickles.Select(p => p.FullName))}); torch.save writes one.");

            var pickle = pickles[0];
            string folder = pickle.FullName[..pickle.FullName.IndexOf('/')];
            string dataPrefix = folder + "/data/";
            var storages = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
            foreach (var entry in archive.Entries)
            {
                if (entry.FullName.StartsWith(dataPrefix, StringComparison.Ordinal))
                    storages.TryAdd(entry.FullName[dataPrefix.Length..], entry);
            }

            var byteOrder = archive.GetEntry(folder + "/byteorder");
            if (byteOrder is not null && byteOrder.Length < 64)
            {
                using var reader = new StreamReader(OpenEntry(byteOrder, path, null), Encoding.ASCII);
                string order = reader.ReadToEnd().Trim();
                if (order != "little")
                    throw new CheckpointException(path, null, $"the storages are {order}-endian; only little-endian checkpoints are read.");
            }

            return new ArchiveLayout(folder, pickle, storages);
        }
    }
}
