using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Runtime;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Checkpoints;

[TestClass]
public sealed class SafeTensorsFileTests
{
    private string folder = "";

    [ClassInitialize]
    public static void LoadTorch(TestContext context) => TorchRuntime.EnsureInitialized();

    [TestInitialize]
    public void CreateFolder() => folder = Directory.CreateTempSubdirectory("safetensors-tests-").FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    internal static string Fixture(string model) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf-tiny", model);

    internal static Dictionary<string, long[]> ExpectedShapes(string model)
    {
        using var expected = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Fixture(model), "expected.json")));
        return expected.RootElement.GetProperty("tensors").EnumerateObject()
            .ToDictionary(t => t.Name, t => t.Value.EnumerateArray().Select(d => d.GetInt64()).ToArray());
    }

    /// <summary>A safetensors file from a header written as JSON text and <paramref name="dataBytes"/> bytes of data.</summary>
    internal static byte[] Build(string header, int dataBytes)
    {
        var json = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)json.Length);
        json.CopyTo(file, 8);
        for (int i = 8 + json.Length; i < file.Length; i++)
            file[i] = (byte)i;
        return file;
    }

    private string Save(byte[] content, string name = "model.safetensors")
    {
        string path = Path.Combine(folder, name);
        File.WriteAllBytes(path, content);
        return path;
    }

    private static byte[] Bytes(torch.Tensor tensor) => tensor.contiguous().bytes.ToArray();

    [TestMethod]
    [DataRow("bert")]
    [DataRow("distilbert")]
    [DataRow("roberta")]
    [DataRow("gpt2")]
    public void FixtureHasEveryTensorOfExpectedJsonWithItsShape(string model)
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(Fixture(model), "model.safetensors");
        var expected = ExpectedShapes(model);

        var tensors = SafeTensorsFile.Read(path);
        var header = SafeTensorsFile.ReadHeader(path);

        CollectionAssert.AreEquivalent(expected.Keys.ToList(), tensors.Keys.ToList());
        CollectionAssert.AreEquivalent(expected.Keys.ToList(), header.Keys.ToList());
        foreach (var (name, shape) in expected)
        {
            CollectionAssert.AreEqual(shape, tensors[name].shape, name);
            CollectionAssert.AreEqual(shape, header[name].Shape.ToArray(), name);
            Assert.AreEqual(torch.ScalarType.Float32, tensors[name].dtype, name);
            Assert.AreEqual("F32", header[name].DType, name);
            Assert.AreEqual(header[name].ElementCount * 4, header[name].DataEnd - header[name].DataBegin, name);
        }
    }

    [TestMethod]
    [DataRow("bert")]
    [DataRow("gpt2")]
    public void WriteReproducesTheHuggingFaceFileByteForByte(string model)
    {
        using var scope = torch.NewDisposeScope();
        string original = Path.Combine(Fixture(model), "model.safetensors");
        string copy = Path.Combine(folder, "copy.safetensors");

        SafeTensorsFile.Write(copy, SafeTensorsFile.Read(original));

        CollectionAssert.AreEqual(File.ReadAllBytes(original), File.ReadAllBytes(copy));
    }

    [TestMethod]
    public void WriteThenReadRoundTripsBitIdentically()
    {
        using var scope = torch.NewDisposeScope();
        var generator = new Random(7);
        var floats = Enumerable.Range(0, 64).Select(_ => (float)(generator.NextDouble() * 2 - 1)).ToArray();
        // Bit patterns that a conversion would lose: negative zero, infinities, a NaN payload, subnormals.
        floats[0] = -0f;
        floats[1] = float.PositiveInfinity;
        floats[2] = float.NegativeInfinity;
        floats[3] = BitConverter.Int32BitsToSingle(0x7fc0_1234);
        floats[4] = float.Epsilon;
        floats[5] = BitConverter.Int32BitsToSingle(0x0000_ffff);
        var tensors = new Dictionary<string, torch.Tensor>
        {
            ["encoder.weight"] = torch.tensor(floats).reshape(8, 8),
            ["transposed.weight"] = torch.tensor(floats).reshape(4, 16).t(), // not contiguous
            ["embeddings.position_ids"] = torch.tensor(new long[] { long.MinValue, -1, 0, 1, long.MaxValue }).reshape(1, 5),
            ["mask"] = torch.tensor(new[] { true, false, true }),
            ["scale"] = torch.tensor(2.5f),
            ["empty"] = torch.zeros(0, 3),
        };
        string path = Path.Combine(folder, "round-trip.safetensors");

        SafeTensorsFile.Write(path, tensors);
        var read = SafeTensorsFile.Read(path);

        CollectionAssert.AreEquivalent(tensors.Keys.ToList(), read.Keys.ToList());
        foreach (var (name, tensor) in tensors)
        {
            Assert.AreEqual(tensor.dtype, read[name].dtype, name);
            CollectionAssert.AreEqual(tensor.shape, read[name].shape, name);
            CollectionAssert.AreEqual(Bytes(tensor), Bytes(read[name]), name);
        }

        // The header starts the data 8-aligned and puts int64 data first, so every tensor is aligned.
        var header = SafeTensorsFile.ReadHeader(path);
        Assert.AreEqual(0, header["embeddings.position_ids"].DataBegin);
        Assert.AreEqual(0, BinaryPrimitives.ReadInt64LittleEndian(File.ReadAllBytes(path)) % 8);
    }

    [TestMethod]
    public void WriteStoresFloatingPointAsF32AndIntegersAsI64WithFormatMetadata()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(folder, "types.safetensors");
        var half = torch.tensor(new[] { 1.5f, -2f }).to_type(torch.ScalarType.Float16);
        var ints = torch.tensor(new[] { 3, -4 });

        SafeTensorsFile.Write(path, new Dictionary<string, torch.Tensor> { ["half"] = half, ["ints"] = ints }, new Dictionary<string, string> { ["note"] = "test" });

        var header = SafeTensorsFile.ReadHeader(path);
        Assert.AreEqual("F32", header["half"].DType);
        Assert.AreEqual("I64", header["ints"].DType);
        var read = SafeTensorsFile.Read(path);
        CollectionAssert.AreEqual(new[] { 1.5f, -2f }, read["half"].data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { 3, -4 }, read["ints"].data<long>().ToArray());

        var bytes = File.ReadAllBytes(path);
        var json = Encoding.UTF8.GetString(bytes, 8, (int)BinaryPrimitives.ReadInt64LittleEndian(bytes));
        StringAssert.StartsWith(json, "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"test\"}");
    }

    [TestMethod]
    public void HalfBFloat16AndNarrowIntegersLoadAsFloat32AndInt64()
    {
        using var scope = torch.NewDisposeScope();
        const string header = """
            {"h":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[6,10]},
             "i":{"dtype":"I32","shape":[2],"data_offsets":[10,18]},"d":{"dtype":"F64","shape":[1],"data_offsets":[18,26]}}
            """;
        var file = Build(header, 26);
        var data = file.AsSpan(file.Length - 26);
        BinaryPrimitives.WriteUInt16LittleEndian(data[0..], 0x3C00); // 1.0
        BinaryPrimitives.WriteUInt16LittleEndian(data[2..], 0xC100); // -2.5
        BinaryPrimitives.WriteUInt16LittleEndian(data[4..], 0x7BFF); // 65504, the largest half
        BinaryPrimitives.WriteUInt16LittleEndian(data[6..], 0x3F80); // 1.0
        BinaryPrimitives.WriteUInt16LittleEndian(data[8..], 0xC0A0); // -5.0
        BinaryPrimitives.WriteInt32LittleEndian(data[10..], -7);
        BinaryPrimitives.WriteInt32LittleEndian(data[14..], int.MaxValue);
        BinaryPrimitives.WriteDoubleLittleEndian(data[18..], 0.125);

        var tensors = SafeTensorsFile.Read(Save(file));

        CollectionAssert.AreEqual(new[] { 1f, -2.5f, 65504f }, tensors["h"].data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 1f, -5f }, tensors["b"].data<float>().ToArray());
        CollectionAssert.AreEqual(new long[] { -7, int.MaxValue }, tensors["i"].data<long>().ToArray());
        CollectionAssert.AreEqual(new[] { 0.125f }, tensors["d"].data<float>().ToArray());
        Assert.AreEqual("F16", SafeTensorsFile.ReadHeader(Save(file, "again.safetensors"))["h"].DType);
    }

    [TestMethod]
    public void FailedWriteLeavesThePreviousFileAndNoTemporaryFile()
    {
        using var scope = torch.NewDisposeScope();
        string path = Path.Combine(folder, "model.safetensors");
        SafeTensorsFile.Write(path, new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(2) });
        var before = File.ReadAllBytes(path);

        static IEnumerable<KeyValuePair<string, torch.Tensor>> Repeated()
        {
            yield return new("b", torch.ones(3));
            yield return new("b", torch.ones(3));
        }

        Assert.ThrowsExactly<ArgumentException>(() => SafeTensorsFile.Write(path, Repeated()));
        Assert.ThrowsExactly<ArgumentException>(() => SafeTensorsFile.Write(path, [new("", torch.ones(1))]));
        Assert.ThrowsExactly<ArgumentException>(() => SafeTensorsFile.Write(path, [new("__metadata__", torch.ones(1))]));
        Assert.ThrowsExactly<ArgumentException>(() => SafeTensorsFile.Write(path, [new("c", torch.ones(1, dtype: torch.ScalarType.ComplexFloat32))]));

        CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
        SafeTensorsFile.Write(path, new Dictionary<string, torch.Tensor> { ["c"] = torch.zeros(4) });
        CollectionAssert.AreEqual(new[] { "model.safetensors" }, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray());
        CollectionAssert.AreEqual(new long[] { 4 }, SafeTensorsFile.ReadHeader(path)["c"].Shape.ToArray());
    }

    // Each hostile header: the exception names the file and the tensor at fault (null: the file as a whole).
    [TestMethod]
    [DataRow("""{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 12, "a", "run past the end", DisplayName = "truncated data")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],""", 8, null, "not valid JSON", DisplayName = "header not JSON")]
    [DataRow("""[1, 2, 3]""", 0, null, "not an object", DisplayName = "header is an array")]
    [DataRow("""{"a":5}""", 0, "a", "not an object", DisplayName = "entry is a number")]
    [DataRow("""{"a":{"shape":[2],"data_offsets":[0,8]}}""", 8, "a", "no \"dtype\"", DisplayName = "dtype missing")]
    [DataRow("""{"a":{"dtype":"F32","data_offsets":[0,8]}}""", 8, "a", "no \"shape\"", DisplayName = "shape missing")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2]}}""", 8, "a", "no \"data_offsets\"", DisplayName = "offsets missing")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}""", 8, "a", "no \"data_offsets\"", DisplayName = "offsets not a pair")]
    [DataRow("""{"a":{"dtype":"F7","shape":[2],"data_offsets":[0,8]}}""", 8, "a", "dtype \"F7\"", DisplayName = "unknown dtype")]
    [DataRow("""{"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}""", 2, "a", "dtype \"F8_E4M3\"", DisplayName = "unsupported dtype")]
    [DataRow("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", 8, "a", "not a non-negative integer", DisplayName = "negative dimension")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}""", 8, "a", "not a non-negative integer", DisplayName = "fractional dimension")]
    [DataRow("""{"a":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,8]}}""", 8, "a", "not a non-negative integer", DisplayName = "dimension beyond 64 bits")]
    [DataRow("""{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}""", 8, "a", "more elements than any file", DisplayName = "shape product overflows")]
    [DataRow("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8, "a", "needs 12", DisplayName = "offsets disagree with shape")]
    [DataRow("""{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}""", 8, "a", "end before they begin", DisplayName = "offsets reversed")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}}""", 8, "a", "no \"data_offsets\"", DisplayName = "negative offset")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "b", "overlap", DisplayName = "overlapping tensors")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}""", 12, "b", "no holes", DisplayName = "hole between tensors")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "a", "no holes", DisplayName = "hole before first tensor")]
    [DataRow("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 12, null, "trailing", DisplayName = "trailing bytes")]
    [DataRow("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", 8, "a", "twice", DisplayName = "duplicate name")]
    [DataRow("""{"__metadata__":{"format":1}}""", 0, null, "not a string", DisplayName = "metadata value not a string")]
    [DataRow("""{"__metadata__":[]}""", 0, null, "not an object of strings", DisplayName = "metadata not an object")]
    public void HostileHeaderIsRefusedNamingFileAndTensor(string header, int dataBytes, string? tensor, string problem)
    {
        string path = Save(Build(header, dataBytes));

        var read = Assert.ThrowsExactly<CheckpointException>(() => SafeTensorsFile.Read(path));
        var headerOnly = Assert.ThrowsExactly<CheckpointException>(() => SafeTensorsFile.ReadHeader(path));

        Assert.AreEqual(read.Message, headerOnly.Message);
        Assert.AreEqual(path, read.FilePath);
        Assert.AreEqual(tensor, read.TensorName);
        StringAssert.Contains(read.Message, path);
        StringAssert.Contains(read.Message, problem);
        if (tensor is not null)
            StringAssert.Contains(read.Message, $"'{tensor}'");
    }

    [TestMethod]
    public void FileShorterThanTheHeaderLengthIsRefused()
    {
        string path = Save([1, 0, 0]);

        var error = Assert.ThrowsExactly<CheckpointException>(() => SafeTensorsFile.Read(path));

        StringAssert.Contains(error.Message, "too short");
    }

    [TestMethod]
    public void HeaderLengthBeyondTheFileIsRefusedWithoutAllocatingIt()
    {
        var file = Build("""{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4);
        foreach (ulong claimed in new[] { (ulong)file.Length - 7, 1UL << 40, (ulong)long.MaxValue, ulong.MaxValue })
        {
            BinaryPrimitives.WriteUInt64LittleEndian(file, claimed);
            string path = Save(file);

            long allocated = GC.GetAllocatedBytesForCurrentThread();
            var error = Assert.ThrowsExactly<CheckpointException>(() => SafeTensorsFile.ReadHeader(path));
            allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

            StringAssert.Contains(error.Message, $"says {claimed} bytes but only {file.Length - 8} follow");
            Assert.IsLessThan(1 << 20, allocated, $"refusing a header of {claimed} bytes allocated {allocated} bytes");
        }
    }

    [TestMethod]
    public void AbsurdHeaderLengthIsRefusedEvenWhenTheFileIsThatLarge()
    {
        string path = Path.Combine(folder, "sparse.safetensors");
        using (var file = File.Create(path))
        {
            var prefix = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, SafeTensorsFile.MaxHeaderBytes + 1);
            file.Write(prefix);
            file.SetLength(SafeTensorsFile.MaxHeaderBytes + 64); // sparse: no disk is used
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.ThrowsExactly<CheckpointException>(() => SafeTensorsFile.Read(path));
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

        StringAssert.Contains(error.Message, "may have");
        Assert.IsLessThan(1 << 20, allocated, $"refusing the header allocated {allocated} bytes");
    }

    [TestMethod]
    public void HugeClaimedShapeIsRefusedBeforeAnyTensorIsAllocated()
    {
        string path = Save(Build("""{"big":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}""", 16));
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        var error = Assert.ThrowsExactly<CheckpointException>(() => SafeTensorsFile.Read(path));

        Assert.AreEqual("big", error.TensorName);
        Assert.AreEqual(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }

    [TestMethod]
    public void EveryTruncationOfAValidFileIsRefused()
    {
        using var scope = torch.NewDisposeScope();
        string whole = Path.Combine(folder, "whole.safetensors");
        SafeTensorsFile.Write(whole, new Dictionary<string, torch.Tensor>
        {
            ["a"] = torch.arange(6, dtype: torch.ScalarType.Float32),
            ["b"] = torch.arange(3, dtype: torch.ScalarType.Int64),
        });
        var bytes = File.ReadAllBytes(whole);

        for (int length = 0; length < bytes.Length; length++)
        {
            string path = Save(bytes[..length], "cut.safetensors");
            Assert.ThrowsExactly<CheckpointException>(() => SafeTensorsFile.Read(path), $"cut at {length} of {bytes.Length}");
        }
    }

    [TestMethod]
    public void CorruptedHeadersGiveCheckpointExceptionsOrValidTensors()
    {
        using var scope = torch.NewDisposeScope();
        string whole = Path.Combine(folder, "whole.safetensors");
        SafeTensorsFile.Write(whole, new Dictionary<string, torch.Tensor>
        {
            ["weight"] = torch.ones(2, 3),
            ["bias"] = torch.zeros(3),
            ["ids"] = torch.arange(4, dtype: torch.ScalarType.Int64),
        });
        var bytes = File.ReadAllBytes(whole);
        int headerEnd = 8 + (int)BinaryPrimitives.ReadInt64LittleEndian(bytes);
        var random = new Random(2024);

        int refused = 0;
        for (int trial = 0; trial < 400; trial++)
        {
            var mutated = (byte[])bytes.Clone();
            for (int flips = random.Next(1, 4); flips > 0; flips--)
                mutated[random.Next(headerEnd)] = (byte)random.Next(256);
            string path = Save(mutated, "mutated.safetensors");
            try
            {
                using var inner = torch.NewDisposeScope();
                SafeTensorsFile.Read(path);
            }
            catch (CheckpointException)
            {
                refused++;
            }
        }

        Assert.IsGreaterThan(300, refused, "most random corruptions of a header must be caught");
    }
}
