using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Unicode;
using MLNetTransformerExtensions.Runtime;
using TorchSharp;

namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>
/// Reads and writes HuggingFace safetensors files: an 8-byte little-endian header length, a JSON header mapping
/// each tensor name to its dtype, shape and data_offsets (plus an optional <c>__metadata__</c> map of strings),
/// then the tensors' raw little-endian bytes, back to back.
/// </summary>
/// <remarks>
/// Every header is checked against the real file length before any tensor memory is allocated: a header that
/// claims more data than the file has, offsets that overlap, leave holes or disagree with dtype × shape, unknown
/// dtypes, negative or overflowing shapes and duplicate names all raise a <see cref="CheckpointException"/> naming
/// the file and the tensor.
/// </remarks>
public static class SafeTensorsFile
{
    // The reference implementation refuses headers above 100 MB; real ones are a few hundred KB at most.
    internal const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private sealed record DType(string Name, torch.ScalarType Stored, int ElementSize, torch.ScalarType Loaded);

    // Floating-point data loads as float32 and integer data as int64, whatever width the file stores.
    private static readonly Dictionary<string, DType> DTypes = new DType[]
    {
        new("F64", torch.ScalarType.Float64, 8, torch.ScalarType.Float32),
        new("F32", torch.ScalarType.Float32, 4, torch.ScalarType.Float32),
        new("F16", torch.ScalarType.Float16, 2, torch.ScalarType.Float32),
        new("BF16", torch.ScalarType.BFloat16, 2, torch.ScalarType.Float32),
        new("I64", torch.ScalarType.Int64, 8, torch.ScalarType.Int64),
        new("I32", torch.ScalarType.Int32, 4, torch.ScalarType.Int64),
        new("I16", torch.ScalarType.Int16, 2, torch.ScalarType.Int64),
        new("I8", torch.ScalarType.Int8, 1, torch.ScalarType.Int64),
        new("U8", torch.ScalarType.Byte, 1, torch.ScalarType.Int64),
        new("BOOL", torch.ScalarType.Bool, 1, torch.ScalarType.Bool),
    }.ToDictionary(d => d.Name, StringComparer.Ordinal);

    /// <summary>Reads every tensor of a safetensors file onto the CPU.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <returns>
    /// The tensors by name, in header order: F64/F32/F16/BF16 data as float32, I64/I32/I16/I8/U8 data (such as
    /// <c>position_ids</c> buffers) as int64, BOOL as bool. The caller owns them; they join the caller's dispose
    /// scope if one is open.
    /// </returns>
    /// <exception cref="CheckpointException">The file is damaged, truncated or not a safetensors file.</exception>
    public static Dictionary<string, torch.Tensor> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        TorchRuntime.EnsureInitialized();

        using var file = OpenRead(path);
        var header = ReadHeader(file, path);

        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var tensors = new Dictionary<string, torch.Tensor>(header.Tensors.Count, StringComparer.Ordinal);
        foreach (var (name, info) in header.Tensors)
        {
            var dtype = DTypes[info.DType];
            var stored = torch.empty([.. info.Shape], dtype.Stored);
            file.Position = header.DataStart + info.DataBegin;
            try
            {
                TensorBytes.ReadExactly(file, stored);
            }
            catch (EndOfStreamException e)
            {
                throw new CheckpointException(path, name, "the file ended inside this tensor's data (was it changed while being read?).", e);
            }

            tensors.Add(name, dtype.Stored == dtype.Loaded ? stored : stored.to_type(dtype.Loaded));
        }

        foreach (var tensor in tensors.Values)
            tensor.MoveToOuterDisposeScope();
        return tensors;
    }

    /// <summary>Reads and checks the header of a safetensors file without reading any tensor data.</summary>
    /// <param name="path">The <c>.safetensors</c> file.</param>
    /// <returns>Each tensor's dtype, shape and data offsets, by name, in header order.</returns>
    /// <exception cref="CheckpointException">The header is damaged, inconsistent with the file, or not safetensors.</exception>
    public static IReadOnlyDictionary<string, TensorInfo> ReadHeader(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var file = OpenRead(path);
        return ReadHeader(file, path).Tensors;
    }

    /// <summary>
    /// Writes tensors as a safetensors file laid out as HuggingFace's writer does: header
    /// <c>{"__metadata__":{"format":"pt"}, ...}</c> padded with spaces to 8 bytes, tensors ordered widest dtype
    /// first, then by name.
    /// </summary>
    /// <remarks>
    /// Floating-point tensors are written as F32, integer tensors as I64 and bool tensors as BOOL, so reading
    /// the file back returns bit-identical tensors. The file is written to a temporary file in the same folder
    /// and renamed over <paramref name="path"/> only when complete: a failed write leaves any previous file intact.
    /// </remarks>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="tensors">The tensors by name (any device and layout; names must be unique and non-empty).</param>
    /// <param name="metadata">Extra <c>__metadata__</c> entries; <c>format</c> is <c>pt</c> unless given here.</param>
    /// <exception cref="ArgumentException">A name is empty, reserved or repeated, or a tensor has a complex dtype.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors, metadata, createTemporary: null);

    /// <summary>As the public overload; <paramref name="createTemporary"/> opens the temporary file (tests make it fail part-way).</summary>
    internal static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata,
        Func<string, Stream>? createTemporary)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        TorchRuntime.EnsureInitialized();

        var entries = new List<(string Name, torch.Tensor Tensor, DType Type)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            if (string.IsNullOrEmpty(name) || name == MetadataKey)
                throw new ArgumentException($"A tensor cannot be named '{name}' in a safetensors file.", nameof(tensors));
            if (!names.Add(name))
                throw new ArgumentException($"Tensor '{name}' is given twice; a safetensors file holds each name once.", nameof(tensors));
            if (tensor is null)
                throw new ArgumentException($"Tensor '{name}' is null.", nameof(tensors));
            entries.Add((name, tensor, WrittenType(name, tensor.dtype)));
        }

        // Widest first keeps every tensor aligned to its element size (the data section starts 8-aligned).
        entries.Sort((a, b) => b.Type.ElementSize != a.Type.ElementSize
            ? b.Type.ElementSize.CompareTo(a.Type.ElementSize)
            : string.CompareOrdinal(a.Name, b.Name));
        byte[] header = BuildHeader(entries.Select(e => (e.Name, e.Type.Name, e.Tensor.shape, e.Tensor.numel() * e.Type.ElementSize)), metadata);

        AtomicFile.Write(path, file =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            file.Write(length);
            file.Write(header);

            using var noGrad = torch.no_grad();
            foreach (var entry in entries)
            {
                using var scope = torch.NewDisposeScope();
                TensorBytes.Write(file, entry.Tensor.detach().cpu().to_type(entry.Type.Stored).contiguous());
            }
        }, createTemporary);
    }

    private static DType WrittenType(string name, torch.ScalarType type) => type switch
    {
        torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Float32 or torch.ScalarType.Float64 => DTypes["F32"],
        torch.ScalarType.Byte or torch.ScalarType.Int8 or torch.ScalarType.Int16 or torch.ScalarType.Int32 or torch.ScalarType.Int64 => DTypes["I64"],
        torch.ScalarType.Bool => DTypes["BOOL"],
        _ => throw new ArgumentException($"Tensor '{name}' has dtype {type}, which is not written to safetensors here (floating-point, integer and bool tensors are).", nameof(type)),
    };

    private static byte[] BuildHeader(IEnumerable<(string Name, string DType, long[] Shape, long Bytes)> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            json.WriteStartObject(MetadataKey);
            if (metadata is null || !metadata.ContainsKey("format"))
                json.WriteString("format", "pt");
            foreach (var (key, value) in metadata ?? new Dictionary<string, string>())
                json.WriteString(key, value);
            json.WriteEndObject();

            long offset = 0;
            foreach (var (name, dtype, shape, bytes) in entries)
            {
                json.WriteStartObject(name);
                json.WriteString("dtype", dtype);
                json.WriteStartArray("shape");
                foreach (long dimension in shape)
                    json.WriteNumberValue(dimension);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }

            json.WriteEndObject();
        }

        // Spaces pad the header so the data section starts on an 8-byte boundary, as HuggingFace's writer does.
        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private sealed record Header(Dictionary<string, TensorInfo> Tensors, long DataStart);

    private static FileStream OpenRead(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0, FileOptions.SequentialScan);

    private static Header ReadHeader(FileStream file, string path)
    {
        long fileLength = file.Length;
        if (fileLength < 8)
            throw new CheckpointException(path, null, $"the file is {fileLength} bytes long, too short for the 8-byte header length that starts a safetensors file.");

        Span<byte> prefix = stackalloc byte[8];
        file.ReadExactly(prefix);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > (ulong)(fileLength - 8))
            throw new CheckpointException(path, null, $"the header length says {headerLength} bytes but only {fileLength - 8} follow: the file is truncated or is not a safetensors file.");
        if (headerLength > MaxHeaderBytes)
            throw new CheckpointException(path, null, $"the header length says {headerLength} bytes, more than the {MaxHeaderBytes} a safetensors header may have.");

        var json = new byte[headerLength];
        file.ReadExactly(json);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        // JsonDocument checks UTF-8 only when a string is read, which would surface later as a different error.
        if (!Utf8.IsValid(json))
            throw new CheckpointException(path, null, "the header is not valid UTF-8 text.");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new CheckpointException(path, null, $"the header is not valid JSON ({e.Message}).", e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new CheckpointException(path, null, $"the header is a JSON {Describe(root.ValueKind)}, not an object mapping tensor names to dtype, shape and data_offsets.");

            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (sawMetadata)
                        throw new CheckpointException(path, null, "the header has two __metadata__ entries.");
                    sawMetadata = true;
                    CheckMetadata(path, property.Value);
                    continue;
                }

                if (tensors.ContainsKey(property.Name))
                    throw new CheckpointException(path, property.Name, "the header lists this name twice.");
                tensors.Add(property.Name, ParseEntry(path, property.Name, property.Value, dataLength));
            }

            CheckLayout(path, tensors, dataLength);
            return new Header(tensors, dataStart);
        }
    }

    private static void CheckMetadata(string path, JsonElement metadata)
    {
        if (metadata.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(path, null, $"__metadata__ is a JSON {Describe(metadata.ValueKind)}, not an object of strings.");
        foreach (var entry in metadata.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new CheckpointException(path, null, $"__metadata__ entry '{entry.Name}' is a JSON {Describe(entry.Value.ValueKind)}, not a string.");
        }
    }

    private static TensorInfo ParseEntry(string path, string name, JsonElement entry, long dataLength)
    {
        if (entry.ValueKind != JsonValueKind.Object)
            throw new CheckpointException(path, name, $"the header entry is a JSON {Describe(entry.ValueKind)}, not an object with dtype, shape and data_offsets.");

        if (!entry.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new CheckpointException(path, name, "the header entry has no \"dtype\" string.");
        string dtypeName = dtypeElement.GetString()!;
        if (!DTypes.TryGetValue(dtypeName, out var dtype))
            throw new CheckpointException(path, name, $"dtype \"{Shorten(dtypeName)}\" is not one this reader supports ({string.Join(", ", DTypes.Keys)}).");

        if (!entry.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new CheckpointException(path, name, "the header entry has no \"shape\" array.");
        var shape = new List<long>(shapeElement.GetArrayLength());
        foreach (var dimension in shapeElement.EnumerateArray())
        {
            if (!TryGetNonNegative(dimension, out long size))
                throw new CheckpointException(path, name, $"shape dimension {Shorten(dimension.GetRawText())} is not a non-negative integer.");
            shape.Add(size);
        }

        long bytes;
        try
        {
            long elements = 1;
            foreach (long size in shape)
                elements = checked(elements * size);
            bytes = checked(elements * dtype.ElementSize);
        }
        catch (OverflowException)
        {
            throw new CheckpointException(path, name, $"shape [{string.Join(", ", shape)}] has more elements than any file can hold.");
        }

        if (!entry.TryGetProperty("data_offsets", out var offsets) || offsets.ValueKind != JsonValueKind.Array || offsets.GetArrayLength() != 2
            || !TryGetNonNegative(offsets[0], out long begin) || !TryGetNonNegative(offsets[1], out long end))
            throw new CheckpointException(path, name, "the header entry has no \"data_offsets\" pair of non-negative integers.");
        if (end < begin)
            throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}] end before they begin.");
        if (end > dataLength)
            throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}] run past the end of the data section ({dataLength} bytes): the file is truncated or its header is wrong.");
        if (end - begin != bytes)
            throw new CheckpointException(path, name, $"data_offsets [{begin}, {end}] hold {end - begin} bytes, but dtype {dtype.Name} with shape [{string.Join(", ", shape)}] needs {bytes}.");

        return new TensorInfo(dtype.Name, shape, begin, end);
    }

    // Like the reference implementation: tensors tile the data section exactly, with no overlap, hole or trailing
    // bytes, so no byte of the file can mean two things.
    private static void CheckLayout(string path, Dictionary<string, TensorInfo> tensors, long dataLength)
    {
        long expected = 0;
        string? previous = null;
        foreach (var (name, info) in tensors.OrderBy(t => t.Value.DataBegin).ThenBy(t => t.Value.DataEnd))
        {
            if (info.DataBegin < expected)
                throw new CheckpointException(path, name, $"data_offsets [{info.DataBegin}, {info.DataEnd}] overlap those of tensor '{previous}', which end at {expected}.");
            if (info.DataBegin > expected)
                throw new CheckpointException(path, name, $"the {info.DataBegin - expected} bytes before its data_offsets [{info.DataBegin}, {info.DataEnd}] belong to no tensor; a safetensors file has no holes.");
            expected = info.DataEnd;
            previous = name;
        }

        if (expected != dataLength)
            throw new CheckpointException(path, null, $"the {dataLength - expected} bytes after the last tensor's data belong to no tensor; a safetensors file has no trailing data.");
    }

    private static bool TryGetNonNegative(JsonElement element, out long value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out value) && value >= 0;
    }

    private static string Describe(JsonValueKind kind) => kind.ToString().ToLowerInvariant();

    private static string Shorten(string text) => text.Length <= 40 ? text : text[..40] + "...";
}
