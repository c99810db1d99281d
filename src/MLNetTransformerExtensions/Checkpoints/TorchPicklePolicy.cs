using TorchSharp;

namespace MLNetTransformerExtensions.Checkpoints;

/// <summary>A storage a torch.save pickle refers to by persistent id: raw data in <c>&lt;folder&gt;/data/&lt;key&gt;</c>.</summary>
internal sealed record StorageReference(string Key, string TypeName, torch.ScalarType DType, long ElementCount);

/// <summary>A tensor as <c>torch._utils._rebuild_tensor_v2</c> describes it: a strided view of a storage.</summary>
internal sealed record TensorReference(StorageReference Storage, long Offset, long[] Size, long[] Stride);

/// <summary>
/// The globals a state dict saved by <c>torch.save</c> needs, and nothing else: OrderedDict, the tensor and
/// parameter rebuild functions, and the typed storage classes (only as persistent-id tags).
/// </summary>
internal sealed class TorchPicklePolicy : IPickleObjectFactory
{
    private static readonly Dictionary<string, torch.ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = torch.ScalarType.Float32,
        ["HalfStorage"] = torch.ScalarType.Float16,
        ["BFloat16Storage"] = torch.ScalarType.BFloat16,
        ["DoubleStorage"] = torch.ScalarType.Float64,
        ["LongStorage"] = torch.ScalarType.Int64,
        ["IntStorage"] = torch.ScalarType.Int32,
        ["ShortStorage"] = torch.ScalarType.Int16,
        ["CharStorage"] = torch.ScalarType.Int8,
        ["ByteStorage"] = torch.ScalarType.Byte,
        ["BoolStorage"] = torch.ScalarType.Bool,
    };

    private readonly Dictionary<string, StorageReference> storages = new(StringComparer.Ordinal);

    public bool IsAllowed(string module, string name) => (module, name) switch
    {
        ("collections", "OrderedDict") => true,
        ("torch._utils", "_rebuild_tensor_v2") => true,
        ("torch._utils", "_rebuild_parameter") => true,
        ("torch", _) => StorageTypes.ContainsKey(name),
        _ => false,
    };

    // torch.save's persistent id: ("storage", storage type, key, location, element count).
    public object PersistentLoad(object? id)
    {
        if (id is not object?[] { Length: 5 } parts || parts[0] is not "storage" || parts[1] is not PickleGlobal type
            || parts[2] is not string key || parts[3] is not string || parts[4] is not long count)
            throw new InvalidDataException($"a persistent id is a {RestrictedUnpickler.Describe(id)}, not ('storage', type, key, location, size).");
        if (type.Module != "torch" || !StorageTypes.TryGetValue(type.Name, out var dtype))
            throw new InvalidDataException($"storage type {type} is not a torch storage class.");
        if (key.Length == 0 || key.Contains('/') || key.Contains('\\') || key.Contains(".."))
            throw new InvalidDataException($"storage key '{key}' is not a plain archive name.");
        if (count < 0)
            throw new InvalidDataException($"storage '{key}' has a negative size ({count}).");

        var storage = new StorageReference(key, type.Name, dtype, count);
        if (storages.TryGetValue(key, out var earlier))
        {
            if (earlier != storage)
                throw new InvalidDataException($"storage '{key}' is described twice, differently ({earlier.ElementCount} {earlier.TypeName}, then {count} {type.Name}).");
            return earlier;
        }

        storages.Add(key, storage);
        return storage;
    }

    public object Reduce(PickleGlobal callable, object?[] arguments) => (callable.Module, callable.Name) switch
    {
        ("collections", "OrderedDict") when arguments.Length == 0 => new PickleDict(),
        ("torch._utils", "_rebuild_tensor_v2") => RebuildTensor(arguments),
        ("torch._utils", "_rebuild_parameter") => RebuildParameter(arguments),
        _ => throw new InvalidDataException($"{callable} cannot be called with {arguments.Length} arguments in a state dict."),
    };

    // An OrderedDict's state is its attribute dict (a state dict keeps `_metadata` there): not needed, so dropped.
    public void Build(object? target, object? state)
    {
        if (target is not PickleDict || state is not PickleDict)
            throw new InvalidDataException($"BUILD of a {RestrictedUnpickler.Describe(target)} with a {RestrictedUnpickler.Describe(state)} is not part of a state dict.");
    }

    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    private static TensorReference RebuildTensor(object?[] a)
    {
        if (a.Length is not (6 or 7) || a[0] is not StorageReference storage || a[1] is not long offset
            || a[2] is not object?[] size || a[3] is not object?[] stride || a[4] is not bool || a[5] is not PickleDict hooks
            || (a.Length == 7 && a[6] is not (null or PickleDict)))
            throw new InvalidDataException("_rebuild_tensor_v2 needs (storage, offset, size, stride, requires_grad, backward_hooks[, metadata]).");
        if (hooks.Items.Count != 0)
            throw new InvalidDataException("a tensor carries backward hooks, which a state dict never has.");
        return new TensorReference(storage, offset, Integers(size, "size"), Integers(stride, "stride"));
    }

    // _rebuild_parameter(data, requires_grad, backward_hooks): a Parameter is its tensor here.
    private static TensorReference RebuildParameter(object?[] a)
    {
        if (a.Length != 3 || a[0] is not TensorReference tensor || a[1] is not bool || a[2] is not PickleDict hooks || hooks.Items.Count != 0)
            throw new InvalidDataException("_rebuild_parameter needs (tensor, requires_grad, empty backward_hooks).");
        return tensor;
    }

    private static long[] Integers(object?[] items, string what) =>
        items.Select(item => item as long? ?? throw new InvalidDataException($"a tensor {what} holds a {RestrictedUnpickler.Describe(item)}, not an integer.")).ToArray();
}
