using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Onnx;

namespace MLNetTransformerExtensions.Builtin;

/// <summary>An ONNX graph indexed for walking: who produces and who consumes each value, and the constant ones.</summary>
internal sealed class OnnxGraph
{
    public const int FloatType = (int)TensorProto.Types.DataType.Float;
    public const int Int64Type = (int)TensorProto.Types.DataType.Int64;

    private readonly Dictionary<string, NodeProto> producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<NodeProto>> consumers = new(StringComparer.Ordinal);

    public OnnxGraph(GraphProto graph)
    {
        Proto = graph;
        Initializers = graph.Initializer
            .GroupBy(t => t.Name, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Last(), StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (var output in node.Output)
            {
                producers[output] = node;
            }

            foreach (var input in node.Input.Where(i => i.Length > 0).Distinct(StringComparer.Ordinal))
            {
                if (!consumers.TryGetValue(input, out var list))
                {
                    consumers[input] = list = [];
                }

                list.Add(node);
            }
        }
    }

    public GraphProto Proto { get; }

    public IReadOnlyDictionary<string, TensorProto> Initializers { get; }

    public NodeProto? ProducerOf(string value) => producers.GetValueOrDefault(value);

    public IReadOnlyList<NodeProto> ConsumersOf(string value) => consumers.TryGetValue(value, out var list) ? list : [];

    /// <summary>The value's tensor when it is constant: an initializer or the output of a Constant node.</summary>
    public TensorProto? ConstantOf(string value)
    {
        if (Initializers.TryGetValue(value, out var initializer))
        {
            return initializer;
        }

        return ProducerOf(value) is { OpType: "Constant" } node
            ? node.Attribute.FirstOrDefault(a => a.Name == "value")?.T
            : null;
    }

    /// <summary>A constant int64 tensor's values, or null when the value is not one.</summary>
    public long[]? Int64Values(string value)
    {
        if (ConstantOf(value) is not { DataType: Int64Type } tensor)
        {
            return null;
        }

        if (tensor.RawData.Length > 0)
        {
            var bytes = tensor.RawData.Span;
            var values = new long[bytes.Length / sizeof(long)];
            for (int i = 0; i < values.Length; i++)
            {
                values[i] = BinaryPrimitives.ReadInt64LittleEndian(bytes[(i * sizeof(long))..]);
            }

            return values;
        }

        return [.. tensor.Int64Data];
    }

    /// <summary>A constant float32 scalar (or one-element tensor), or null when the value is not one.</summary>
    public float? FloatScalar(string value)
    {
        if (ConstantOf(value) is not { DataType: FloatType } tensor)
        {
            return null;
        }

        if (tensor.RawData.Length == sizeof(float))
        {
            return BinaryPrimitives.ReadSingleLittleEndian(tensor.RawData.Span);
        }

        return tensor.FloatData.Count == 1 ? tensor.FloatData[0] : null;
    }

    /// <summary>
    /// The target shape a Reshape receives, as far as the graph fixes it: a constant gives every dimension; a Concat of
    /// constants and run-time sizes (PyTorch's export of <c>x.size()[:-1] + (heads, head_dim)</c>) gives the constant
    /// parts and null for each run-time one. Null when the shape comes from anything else.
    /// </summary>
    public long?[]? ShapeOperand(string value)
    {
        if (Int64Values(value) is { } constant)
        {
            return [.. constant.Select(v => (long?)v)];
        }

        if (ProducerOf(value) is not { OpType: "Concat" } concat || IntAttribute(concat, "axis", 0) != 0)
        {
            return null;
        }

        var dims = new List<long?>();
        foreach (var part in concat.Input)
        {
            if (Int64Values(part) is { } values)
            {
                dims.AddRange(values.Select(v => (long?)v));
            }
            else if (ProducerOf(part) is { OpType: "Unsqueeze" })
            {
                // One run-time size (a Gather of a Shape), made a one-element vector.
                dims.Add(null);
            }
            else
            {
                return null;
            }
        }

        return [.. dims];
    }

    public static long IntAttribute(NodeProto node, string name, long fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } attribute ? attribute.I : fallback;

    public static float FloatAttribute(NodeProto node, string name, float fallback) =>
        node.Attribute.FirstOrDefault(a => a.Name == name) is { } attribute ? attribute.F : fallback;

    public static string? StringAttribute(NodeProto node, string name) =>
        node.Attribute.FirstOrDefault(a => a.Name == name)?.S.ToStringUtf8();

    /// <summary>Copies a float32 tensor's data (raw little-endian bytes or the float_data field) into a span.</summary>
    /// <returns>False when the tensor holds another number of elements than <paramref name="destination"/> takes.</returns>
    public static bool TryCopyFloats(TensorProto tensor, Span<byte> destination)
    {
        if (tensor.RawData.Length > 0)
        {
            if (tensor.RawData.Length != destination.Length)
            {
                return false;
            }

            tensor.RawData.Span.CopyTo(destination);
            return true;
        }

        if (tensor.FloatData.Count * sizeof(float) != destination.Length)
        {
            return false;
        }

        // float_data is stored as native floats; the library only runs on little-endian machines.
        MemoryMarshal.AsBytes(tensor.FloatData.ToArray().AsSpan()).CopyTo(destination);
        return true;
    }
}
