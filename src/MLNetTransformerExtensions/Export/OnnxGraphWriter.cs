using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Export;

/// <summary>
/// Writes an ONNX graph node by node with the protobuf types of OnnxSharp: inputs and outputs with symbolic batch and
/// sequence axes, float weights copied from TorchSharp tensors, int64 constants, and nodes whose output names say where
/// in the model they are (<c>bert.encoder.layer.0.attention.self.query</c>), so a graph viewer reads like the checkpoint.
/// </summary>
internal sealed class OnnxGraphWriter
{
    /// <summary>
    /// The opset the graphs use: 17 is the first with <c>LayerNormalization</c> in the standard domain, and every
    /// runtime released since 2022 (ONNX Runtime 1.12 on) runs it.
    /// </summary>
    public const int Opset = 17;

    /// <summary>The domain of ONNX Runtime's contrib operators.</summary>
    public const string MicrosoftDomain = "com.microsoft";

    /// <summary>IR version 8 goes with opset 17.</summary>
    private const long IrVersion = 8;

    private readonly GraphProto _graph = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);
    private bool _usesMicrosoftDomain;

    /// <summary>Creates an empty graph.</summary>
    /// <param name="name">The graph's name.</param>
    public OnnxGraphWriter(string name) => _graph.Name = name;

    /// <summary>Adds a graph input of shape (batch, sequence): token ids, masks and token types are int64.</summary>
    public string TokenInput(string name)
    {
        _graph.Input.Add(ValueInfo(name, TensorProto.Types.DataType.Int64, ["batch", "sequence"]));
        _names.Add(name);
        return name;
    }

    /// <summary>Declares <paramref name="value"/> a float graph output of shape (batch, <paramref name="width"/>).</summary>
    public void FloatOutput(string value, long width) =>
        _graph.Output.Add(ValueInfo(value, TensorProto.Types.DataType.Float, ["batch", width]));

    /// <summary>Adds a float32 weight, copied from a tensor (transposed first when asked: Linear weights are stored (out, in)).</summary>
    public string Weight(string name, Tensor tensor, bool transpose = false)
    {
        using var scope = NewDisposeScope();
        var source = transpose ? tensor.t() : tensor;
        var values = source.to(ScalarType.Float32).contiguous().data<float>().ToArray();
        return Floats(name, values, source.shape);
    }

    /// <summary>Adds a float32 initializer.</summary>
    public string Floats(string name, ReadOnlySpan<float> values, long[] dims) =>
        Initializer(name, TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(values), dims);

    /// <summary>Adds an int8 initializer (quantized weights).</summary>
    public string Int8s(string name, ReadOnlySpan<sbyte> values, long[] dims) =>
        Initializer(name, TensorProto.Types.DataType.Int8, MemoryMarshal.AsBytes(values), dims);

    /// <summary>Adds an initializer from little-endian bytes (raw_data, the compact form every runtime reads).</summary>
    private string Initializer(string name, TensorProto.Types.DataType type, ReadOnlySpan<byte> bytes, long[] dims)
    {
        var tensor = new TensorProto { Name = Unique(name), DataType = (int)type };
        tensor.Dims.AddRange(dims);
        tensor.RawData = ByteString.CopyFrom(bytes);
        _graph.Initializer.Add(tensor);
        return tensor.Name;
    }

    /// <summary>An int64 constant (shared: the same values give the same initializer).</summary>
    /// <param name="values">The values; a scalar when <paramref name="scalar"/>, else a 1-D tensor.</param>
    /// <param name="scalar">Whether the constant is a 0-D tensor.</param>
    public string Int64s(long[] values, bool scalar = false)
    {
        var key = (scalar ? "s:" : "v:") + string.Join(",", values);
        if (_constants.TryGetValue(key, out var existing))
        {
            return existing;
        }

        var name = Initializer("const_i64", TensorProto.Types.DataType.Int64, MemoryMarshal.AsBytes(values.AsSpan()), scalar ? [] : [values.Length]);
        return _constants[key] = name;
    }

    /// <summary>A float32 scalar constant (shared).</summary>
    public string Float(float value)
    {
        var key = "f:" + BitConverter.SingleToInt32Bits(value);
        if (_constants.TryGetValue(key, out var existing))
        {
            return existing;
        }

        var name = Floats("const_f32", [value], []);
        return _constants[key] = name;
    }

    /// <summary>Adds a node with one output, named <paramref name="output"/> (made unique), and returns that name.</summary>
    public string Node(string opType, string output, string[] inputs, params AttributeProto[] attributes) =>
        Nodes(opType, [output], inputs, attributes)[0];

    /// <summary>Adds a node with several outputs and returns their names.</summary>
    public string[] Nodes(string opType, string[] outputs, string[] inputs, params AttributeProto[] attributes) =>
        AddNode(string.Empty, opType, outputs, inputs, attributes);

    /// <summary>
    /// Adds a node of ONNX Runtime's <c>com.microsoft</c> domain (its contrib operators: fused kernels other runtimes do
    /// not have) with one output, and returns that output's name. An empty input name skips an optional input.
    /// </summary>
    public string MicrosoftNode(string opType, string output, string[] inputs, params AttributeProto[] attributes)
    {
        _usesMicrosoftDomain = true;
        return AddNode(MicrosoftDomain, opType, [output], inputs, attributes)[0];
    }

    private string[] AddNode(string domain, string opType, string[] outputs, string[] inputs, AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = opType, Domain = domain };
        node.Input.AddRange(inputs);
        var names = outputs.Select(Unique).ToArray();
        node.Output.AddRange(names);
        node.Name = names[0];
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return names;
    }

    /// <summary>An int attribute.</summary>
    public static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>A float attribute.</summary>
    public static AttributeProto FloatAttribute(string name, float value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    /// <summary>An ints attribute.</summary>
    public static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>The finished model.</summary>
    /// <param name="docString">What the model is (stored in the file, shown by viewers).</param>
    /// <param name="metadata">Key-value pairs stored in the model (ONNX Runtime exposes them as custom metadata).</param>
    public ModelProto ToModel(string docString, IReadOnlyDictionary<string, string> metadata)
    {
        var model = new ModelProto
        {
            IrVersion = IrVersion,
            ProducerName = "MLNetTransformerExtensions",
            ProducerVersion = typeof(OnnxGraphWriter).Assembly.GetName().Version?.ToString() ?? "",
            DocString = docString,
            Graph = _graph,
        };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        if (_usesMicrosoftDomain)
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = MicrosoftDomain, Version = 1 });
        }
        foreach (var (key, value) in metadata)
        {
            model.MetadataProps.Add(new StringStringEntryProto { Key = key, Value = value });
        }

        return model;
    }

    private string Unique(string name)
    {
        var candidate = name;
        for (var i = 1; !_names.Add(candidate); i++)
        {
            candidate = $"{name}_{i}";
        }

        return candidate;
    }

    private static ValueInfoProto ValueInfo(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var dim in dims)
        {
            shape.Dim.Add(dim is string symbol
                ? new TensorShapeProto.Types.Dimension { DimParam = symbol }
                : new TensorShapeProto.Types.Dimension { DimValue = (long)dim });
        }

        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
