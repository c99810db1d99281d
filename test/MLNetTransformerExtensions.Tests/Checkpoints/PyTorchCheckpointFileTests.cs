using System.IO.Compression;
using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Runtime;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Checkpoints;

[TestClass]
public sealed class PyTorchCheckpointFileTests
{
    private string folder = "";

    [ClassInitialize]
    public static void LoadTorch(TestContext context) => TorchRuntime.EnsureInitialized();

    [TestInitialize]
    public void CreateFolder() => folder = Directory.CreateTempSubdirectory("pytorch-checkpoint-tests-").FullName;

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    private string PathOf(string name = "pytorch_model.bin") => Path.Combine(folder, name);

    /// <summary>A small BERT-like state dict: float32 weights, an int64 position_ids buffer, half and bfloat16 data.</summary>
    internal static TorchCheckpointBuilder SmallStateDict() => new TorchCheckpointBuilder()
        .Storage("0", new[] { 1f, 2f, 3f, 4f, 5f, 6f })
        .Storage("1", new long[] { 0, 1, 2, 3 })
        .Storage("2", new ushort[] { 0x3C00, 0xC100 }) // half 1.0, -2.5
        .Storage("3", new ushort[] { 0x3F80, 0xC0A0 }) // bfloat16 1.0, -5.0
        .Tensor("encoder.dense.weight", "0", "FloatStorage", 6, [2, 3])
        .Tensor("embeddings.position_ids", "1", "LongStorage", 4, [1, 4])
        .Tensor("half.bias", "2", "HalfStorage", 2, [2])
        .Tensor("bf16.bias", "3", "BFloat16Storage", 2, [2], asParameter: true);

    [TestMethod]
    [DataRow("archive")]
    [DataRow("pytorch_model")]
    public void ReadsAStateDictAsTorchSaveWritesIt(string topFolder)
    {
        using var scope = torch.NewDisposeScope();
        var builder = SmallStateDict();
        builder.Folder = topFolder;
        builder.Save(PathOf());

        var tensors = PyTorchCheckpointFile.Read(PathOf());

        CollectionAssert.AreEqual(new[] { "encoder.dense.weight", "embeddings.position_ids", "half.bias", "bf16.bias" }, tensors.Keys.ToArray());
        var weight = tensors["encoder.dense.weight"];
        Assert.AreEqual(torch.ScalarType.Float32, weight.dtype);
        CollectionAssert.AreEqual(new long[] { 2, 3 }, weight.shape);
        CollectionAssert.AreEqual(new[] { 1f, 2f, 3f, 4f, 5f, 6f }, weight.data<float>().ToArray());
        Assert.AreEqual(torch.ScalarType.Int64, tensors["embeddings.position_ids"].dtype);
        CollectionAssert.AreEqual(new long[] { 0, 1, 2, 3 }, tensors["embeddings.position_ids"].data<long>().ToArray());
        CollectionAssert.AreEqual(new[] { 1f, -2.5f }, tensors["half.bias"].data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 1f, -5f }, tensors["bf16.bias"].data<float>().ToArray());
    }

    [TestMethod]
    public void ViewsOfOneStorageAndTiedWeightsComeBackRight()
    {
        using var scope = torch.NewDisposeScope();
        var values = Enumerable.Range(0, 12).Select(i => (float)i).ToArray();
        new TorchCheckpointBuilder()
            .Storage("0", values)
            .Tensor("first", "0", "FloatStorage", 12, [4])
            .Tensor("transposed", "0", "FloatStorage", 12, [3, 2], stride: [1, 3], offset: 4)
            .Tensor("tail", "0", "FloatStorage", 12, [2], offset: 10)
            // Tied weights: torch.save memoizes the tensor and refers to it again with BINGET.
            .Entry("tied", w => w.Global("torch._utils", "_rebuild_tensor_v2").Mark()
                .Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(12).Tuple().BinPersId()
                .Int(0).IntTuple([4]).IntTuple([1]).False().Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce().Put(200))
            .Entry("tied.again", w => w.Get(200))
            .Save(PathOf());

        var tensors = PyTorchCheckpointFile.Read(PathOf());

        CollectionAssert.AreEqual(new[] { 0f, 1f, 2f, 3f }, tensors["first"].data<float>().ToArray());
        // Storage elements 4..9 viewed as a transposed 2x3 matrix: rows read down the columns.
        CollectionAssert.AreEqual(new[] { 4f, 7f, 5f, 8f, 6f, 9f }, tensors["transposed"].contiguous().data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 10f, 11f }, tensors["tail"].data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 0f, 1f, 2f, 3f }, tensors["tied.again"].data<float>().ToArray());

        // Names for the same elements of a storage share memory, as in PyTorch; other slices own theirs.
        tensors["tied"].add_(1);
        CollectionAssert.AreEqual(new[] { 1f, 2f, 3f, 4f }, tensors["tied.again"].data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 1f, 2f, 3f, 4f }, tensors["first"].data<float>().ToArray());
        tensors["tail"].add_(1);
        CollectionAssert.AreEqual(new[] { 4f, 7f, 5f, 8f, 6f, 9f }, tensors["transposed"].contiguous().data<float>().ToArray());
    }

    [TestMethod]
    public void ReadsProtocol4PicklesWithFramesMemoizeAndSeveralSetItemsBatches()
    {
        // What CPython writes for torch.save(..., pickle_protocol=4): FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL,
        // and the dict's items in batches (of 1000 in CPython; two batches here).
        static void Tensor(PickleWriter w, string name, string key)
        {
            w.Op(0x8c).Byte((byte)name.Length).Raw(System.Text.Encoding.ASCII.GetBytes(name)).Op(0x94);
            w.StackGlobal("torch._utils", "_rebuild_tensor_v2").Op(0x94).Mark()
                .Mark().Str("storage").StackGlobal("torch", "FloatStorage").Str(key).Str("cpu").Int(2).Tuple().Op(0x94).BinPersId()
                .Int(0).Int(2).Op(0x85).Int(1).Op(0x85).False().StackGlobal("collections", "OrderedDict").EmptyTuple().Reduce().Tuple().Reduce().Op(0x94);
        }

        var w = new PickleWriter().Proto(4).Op(0x95).Raw(new byte[8]).StackGlobal("collections", "OrderedDict").Op(0x94).EmptyTuple().Reduce().Op(0x94);
        w.Mark();
        Tensor(w, "a", "0");
        w.SetItems().Mark();
        Tensor(w, "b", "1");
        w.SetItems().Stop();
        new TorchCheckpointBuilder().Storage("0", new[] { 1f, 2f }).Storage("1", new[] { 3f, 4f }).Save(PathOf(), w.ToArray());

        using var scope = torch.NewDisposeScope();
        var tensors = PyTorchCheckpointFile.Read(PathOf());

        CollectionAssert.AreEqual(new[] { 1f, 2f }, tensors["a"].data<float>().ToArray());
        CollectionAssert.AreEqual(new[] { 3f, 4f }, tensors["b"].data<float>().ToArray());
    }

    [TestMethod]
    [DataRow("os", "system", DisplayName = "os.system")]
    [DataRow("posix", "system", DisplayName = "posix.system")]
    [DataRow("builtins", "eval", DisplayName = "builtins.eval")]
    [DataRow("builtins", "exec", DisplayName = "builtins.exec")]
    [DataRow("subprocess", "Popen", DisplayName = "subprocess.Popen")]
    [DataRow("torch", "load", DisplayName = "torch.load")]
    [DataRow("torch._utils", "_rebuild_tensor", DisplayName = "torch._utils._rebuild_tensor (not v2)")]
    [DataRow("collections", "defaultdict", DisplayName = "collections.defaultdict")]
    public void HostileGlobalIsRefusedWithoutRunningAnything(string module, string name)
    {
        string marker = PathOf("pwned");
        string command = $"touch {marker}";
        var calls = new Dictionary<string, byte[]>
        {
            // The classic payload: the global called with a command (GLOBAL, tuple, REDUCE) as the whole pickle...
            ["GLOBAL + REDUCE"] = new PickleWriter().Proto().Global(module, name).Str(command).Op(0x85).Reduce().Stop().ToArray(),
            // ...named through STACK_GLOBAL (protocol 4)...
            ["STACK_GLOBAL"] = new PickleWriter().Proto(4).StackGlobal(module, name).Str(command).Op(0x85).Reduce().Stop().ToArray(),
            // ...or hidden as one value of an otherwise valid state dict, merely referenced.
            ["referenced in a state dict"] = SmallStateDict().Entry("evil", w => w.Global(module, name)).Pickle(),
            ["called in a state dict"] = SmallStateDict().Entry("evil", w => w.Global(module, name).Str(command).Op(0x85).Reduce()).Pickle(),
        };

        foreach (var (how, pickle) in calls)
        {
            SmallStateDict().Save(PathOf(), pickle);

            var error = Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf()), how);

            StringAssert.Contains(error.Message, $"'{module}.{name}'", how);
            StringAssert.Contains(error.Message, "without running anything", how);
            StringAssert.Contains(error.Message, PathOf(), how);
            Assert.IsFalse(File.Exists(marker), how);
        }
    }

    [TestMethod]
    [DataRow((byte)'i', DisplayName = "INST")]
    [DataRow((byte)'o', DisplayName = "OBJ")]
    [DataRow((byte)0x82, DisplayName = "EXT1")]
    [DataRow((byte)0x92, DisplayName = "NEWOBJ_EX")]
    [DataRow((byte)0x97, DisplayName = "NEXT_BUFFER")]
    public void OpcodesAStateDictDoesNotUseAreRefused(byte opcode)
    {
        var pickle = new PickleWriter().Proto().Op(opcode).Raw("os\nsystem\n"u8.ToArray()).Stop().ToArray();
        SmallStateDict().Save(PathOf(), pickle);

        var error = Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf()));

        StringAssert.Contains(error.Message, "opcode");
        StringAssert.Contains(error.Message, "refused");
    }

    // Each hostile tensor or storage: the exception names the file and the tensor.
    [TestMethod]
    [DataRow("7", 6L, new long[] { 6 }, new long[] { 1 }, 0L, "missing from the archive", DisplayName = "storage entry missing")]
    [DataRow("0", 100L, new long[] { 100 }, new long[] { 1 }, 0L, "has 24 bytes", DisplayName = "storage claims more elements than its entry holds")]
    [DataRow("0", 4611686018427387904L, new long[] { 6 }, new long[] { 1 }, 0L, "more than any file", DisplayName = "storage size overflows")]
    [DataRow("0", 6L, new long[] { 7 }, new long[] { 1 }, 0L, "reaches past the end", DisplayName = "view longer than storage")]
    [DataRow("0", 6L, new long[] { 2 }, new long[] { 1 }, 5L, "reaches past the end", DisplayName = "view offset near the end")]
    [DataRow("0", 6L, new long[] { 2, 3 }, new long[] { 3, 2 }, 0L, "reaches past the end", DisplayName = "strides reach past the end")]
    [DataRow("0", 6L, new long[] { 2 }, new long[] { -1 }, 3L, "must not be negative", DisplayName = "negative stride")]
    [DataRow("0", 6L, new long[] { -2 }, new long[] { 1 }, 0L, "must not be negative", DisplayName = "negative size")]
    [DataRow("0", 6L, new long[] { 2 }, new long[] { 1 }, -1L, "must not be negative", DisplayName = "negative offset")]
    [DataRow("0", 6L, new long[] { 2, 2 }, new long[] { 1 }, 0L, "different lengths", DisplayName = "size and stride disagree")]
    [DataRow("0", 6L, new long[] { 4611686018427387904, 4 }, new long[] { 0, 0 }, 0L, "overflows", DisplayName = "element count overflows")]
    [DataRow("0", 6L, new long[] { 1000000000 }, new long[] { 0 }, 0L, "views overlap", DisplayName = "broadcast view larger than storage")]
    public void HostileTensorIsRefusedNamingFileAndTensor(string key, long elements, long[] size, long[] stride, long offset, string problem)
    {
        new TorchCheckpointBuilder()
            .Storage("0", new[] { 1f, 2f, 3f, 4f, 5f, 6f })
            .Tensor("bad.weight", key, "FloatStorage", elements, size, stride, offset)
            .Save(PathOf());
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        long allocated = GC.GetAllocatedBytesForCurrentThread();

        var error = Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf()));

        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.AreEqual(PathOf(), error.FilePath);
        Assert.AreEqual("bad.weight", error.TensorName);
        StringAssert.Contains(error.Message, "'bad.weight'");
        StringAssert.Contains(error.Message, problem);
        Assert.AreEqual(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "a refused file leaves no tensor behind");
        Assert.IsLessThan(4 << 20, allocated, $"refusing the file allocated {allocated} bytes");
    }

    [TestMethod]
    public void OverlappingViewsOfOneStorageAreRefused()
    {
        // Two distinct, overlapping views could make a small file expand into many copies of its storage.
        new TorchCheckpointBuilder()
            .Storage("0", new[] { 1f, 2f, 3f, 4f, 5f, 6f })
            .Tensor("a", "0", "FloatStorage", 6, [5])
            .Tensor("b", "0", "FloatStorage", 6, [5], offset: 1)
            .Save(PathOf());

        var error = Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf()));

        Assert.AreEqual("b", error.TensorName);
        StringAssert.Contains(error.Message, "views overlap");
    }

    [TestMethod]
    public void CompressedStorageIsRefused()
    {
        var builder = new TorchCheckpointBuilder { StorageCompression = CompressionLevel.Optimal }
            .Storage("0", new float[1000])
            .Tensor("zeros", "0", "FloatStorage", 1000, [1000]);
        builder.Save(PathOf());

        var error = Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf()));

        Assert.AreEqual("zeros", error.TensorName);
        StringAssert.Contains(error.Message, "uncompressed");
    }

    [TestMethod]
    public void LegacyAndForeignFormatsAreRefusedWithAClearReason()
    {
        // torch.save before PyTorch 1.6: a bare pickle stream starting with a magic number.
        File.WriteAllBytes(PathOf(), [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
        StringAssert.Contains(Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf())).Message, "legacy (before PyTorch 1.6)");

        File.WriteAllText(PathOf(), "{\"not\": \"a checkpoint\"}");
        StringAssert.Contains(Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf())).Message, "not a PyTorch checkpoint");

        File.WriteAllBytes(PathOf(), []);
        StringAssert.Contains(Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf())).Message, "not a PyTorch checkpoint");

        using (var zip = new ZipArchive(File.Create(PathOf()), ZipArchiveMode.Create))
            zip.CreateEntry("archive/constants.pkl");
        StringAssert.Contains(Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf())).Message, "no <folder>/data.pkl");

        var bigEndian = SmallStateDict();
        bigEndian.ByteOrder = "big";
        bigEndian.Save(PathOf());
        StringAssert.Contains(Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf())).Message, "big-endian");
    }

    [TestMethod]
    public void PicklesThatAreNotStateDictsAreRefused()
    {
        var notADict = new PickleWriter().Proto().EmptyList().Stop().ToArray();
        SmallStateDict().Save(PathOf(), notADict);
        StringAssert.Contains(Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf())).Message, "not a state dict");

        SmallStateDict().Entry("step", w => w.Int(3)).Save(PathOf());
        var error = Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf()));
        Assert.AreEqual("step", error.TensorName);
        StringAssert.Contains(error.Message, "not a tensor");

        SmallStateDict().Entry("encoder.dense.weight", w => w.None()).Save(PathOf());
        StringAssert.Contains(Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf())).Message, "appears twice");
    }

    [TestMethod]
    public void EveryTruncationOfTheArchiveIsRefused()
    {
        SmallStateDict().Save(PathOf("whole.bin"));
        var bytes = File.ReadAllBytes(PathOf("whole.bin"));

        for (int length = 0; length < bytes.Length; length += 7)
        {
            File.WriteAllBytes(PathOf(), bytes[..length]);
            Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf()), $"cut at {length} of {bytes.Length}");
        }
    }

    [TestMethod]
    public void EveryTruncationOfThePickleIsRefused()
    {
        var pickle = SmallStateDict().Pickle();

        for (int length = 0; length < pickle.Length; length++)
        {
            SmallStateDict().Save(PathOf(), pickle[..length]);
            var error = Assert.ThrowsExactly<CheckpointException>(() => PyTorchCheckpointFile.Read(PathOf()), $"cut at {length} of {pickle.Length}");
            StringAssert.Contains(error.Message, "data.pkl");
        }
    }

    [TestMethod]
    public void CorruptedArchivesGiveCheckpointExceptionsOrValidTensors()
    {
        // Flips in storage data give valid tensors; anywhere else a CheckpointException. Any other exception fails.
        SmallStateDict().Save(PathOf("whole.bin"));
        var bytes = File.ReadAllBytes(PathOf("whole.bin"));
        var random = new Random(1968);

        for (int trial = 0; trial < 300; trial++)
        {
            var mutated = (byte[])bytes.Clone();
            for (int flips = random.Next(1, 4); flips > 0; flips--)
                mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            File.WriteAllBytes(PathOf(), mutated);
            try
            {
                using var scope = torch.NewDisposeScope();
                PyTorchCheckpointFile.Read(PathOf());
            }
            catch (CheckpointException)
            {
            }
        }
    }

    [TestMethod]
    public void CorruptedPicklesGiveCheckpointExceptionsOrValidTensors()
    {
        var pickle = SmallStateDict().Pickle();
        var random = new Random(1906);
        long live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;

        int refused = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            var mutated = (byte[])pickle.Clone();
            for (int flips = random.Next(1, 4); flips > 0; flips--)
                mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            SmallStateDict().Save(PathOf(), mutated);
            try
            {
                using var scope = torch.NewDisposeScope();
                PyTorchCheckpointFile.Read(PathOf());
            }
            catch (CheckpointException)
            {
                refused++;
            }
        }

        Assert.IsGreaterThan(200, refused, "most random corruptions of a pickle must be caught");
        Assert.AreEqual(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount, "refused files leave no tensor behind");
    }
}
