using System.IO.Compression;
using System.Runtime.InteropServices;

namespace MLNetTransformerExtensions.Tests.Checkpoints;

/// <summary>
/// Builds a torch.save-style zip (<c>&lt;folder&gt;/data.pkl</c> + <c>&lt;folder&gt;/data/&lt;key&gt;</c>) holding an
/// OrderedDict state dict, with the same opcodes PyTorch writes: OrderedDict() REDUCE, one SETITEMS of
/// <c>_rebuild_tensor_v2((storage pid), offset, size, stride, False, OrderedDict())</c> calls, then BUILD of the
/// <c>_metadata</c> attribute.
/// </summary>
internal sealed class TorchCheckpointBuilder
{
    private readonly List<(string Name, Action<PickleWriter> Value)> entries = [];
    private readonly Dictionary<string, byte[]> storages = [];

    public string Folder { get; set; } = "archive";

    public CompressionLevel StorageCompression { get; set; } = CompressionLevel.NoCompression;

    public string? ByteOrder { get; set; } = "little";

    public TorchCheckpointBuilder Storage<T>(string key, T[] values) where T : unmanaged
    {
        storages[key] = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        return this;
    }

    public TorchCheckpointBuilder RawStorage(string key, byte[] data)
    {
        storages[key] = data;
        return this;
    }

    /// <summary>Adds <c>name</c> as a view of storage <c>key</c> (of type torch.<c>storageType</c>, <c>elements</c> long).</summary>
    public TorchCheckpointBuilder Tensor(string name, string key, string storageType, long elements, long[] size, long[]? stride = null, long offset = 0, bool asParameter = false)
    {
        stride ??= ContiguousStride(size);
        entries.Add((name, w =>
        {
            if (asParameter)
                w.Global("torch._utils", "_rebuild_parameter").Mark();
            w.Global("torch._utils", "_rebuild_tensor_v2").Mark();
            w.Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(elements).Tuple().BinPersId();
            w.Int(offset).IntTuple(size).IntTuple(stride).False().Global("collections", "OrderedDict").EmptyTuple().Reduce();
            w.Tuple().Reduce();
            if (asParameter)
                w.Op(0x88).Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce(); // (tensor, True, OrderedDict())
        }
        ));
        return this;
    }

    /// <summary>Adds an entry whose value is whatever <paramref name="value"/> writes.</summary>
    public TorchCheckpointBuilder Entry(string name, Action<PickleWriter> value)
    {
        entries.Add((name, value));
        return this;
    }

    public byte[] Pickle()
    {
        var w = new PickleWriter().Proto().Global("collections", "OrderedDict").Put(0).EmptyTuple().Reduce().Put(1).Mark();
        foreach (var (name, value) in entries)
        {
            w.Str(name);
            value(w);
        }

        w.SetItems();
        // state_dict()._metadata, set through BUILD as pickle does for an OrderedDict's attributes.
        w.EmptyDict().Str("_metadata").Global("collections", "OrderedDict").EmptyTuple().Reduce()
            .Mark().Str("").EmptyDict().Str("version").Int(1).Op('s').SetItems().Op('s').Build();
        return w.Stop().ToArray();
    }

    public void Save(string path, byte[]? pickle = null)
    {
        using var file = File.Create(path);
        using var zip = new ZipArchive(file, ZipArchiveMode.Create);
        Add(zip, $"{Folder}/data.pkl", pickle ?? Pickle(), CompressionLevel.NoCompression);
        if (ByteOrder is not null)
            Add(zip, $"{Folder}/byteorder", System.Text.Encoding.ASCII.GetBytes(ByteOrder), CompressionLevel.NoCompression);
        foreach (var (key, data) in storages)
            Add(zip, $"{Folder}/data/{key}", data, StorageCompression);
        Add(zip, $"{Folder}/version", "3\n"u8.ToArray(), CompressionLevel.NoCompression);
    }

    private static void Add(ZipArchive zip, string name, byte[] data, CompressionLevel level)
    {
        using var stream = zip.CreateEntry(name, level).Open();
        stream.Write(data);
    }

    private static long[] ContiguousStride(long[] size)
    {
        var stride = new long[size.Length];
        long step = 1;
        for (int i = size.Length - 1; i >= 0; i--)
        {
            stride[i] = step;
            step *= size[i];
        }

        return stride;
    }
}
