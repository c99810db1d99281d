using MLNetTransformerExtensions.Checkpoints;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training.Pretraining;
using TorchSharp;

namespace MLNetTransformerExtensions.Tests.Checkpoints;

/// <summary>
/// A model file is either complete or absent: a write that fails part-way (a full disk) leaves the previous file, byte
/// for byte, and no temporary file. Every writer of model files goes through <see cref="AtomicFile"/>; each is tested
/// with a stream that fails part-way (always) and on a really full tmpfs (when the tests run as root, as CI does).
/// </summary>
[TestClass]
public sealed class AtomicWriteTests
{
    private string folder = string.Empty;

    [TestInitialize]
    public void CreateFolder() => folder = TestPaths.NewTempDirectory();

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    [TestMethod]
    public void AFileWriteThatFailsPartWayLeavesThePreviousFileAndNoTemporaryFile()
    {
        var path = Path.Combine(folder, "config.json");
        File.WriteAllText(path, "{\"previous\": true}\n");

        var error = Assert.ThrowsExactly<IOException>(() => AtomicFile.WriteAllBytes(path, new byte[100_000], FaultInjection.DiskFullAfter(4096)));

        StringAssert.Contains(error.Message, "No space left");
        Assert.AreEqual("{\"previous\": true}\n", File.ReadAllText(path));
        CollectionAssert.AreEqual(new[] { "config.json" }, FaultInjection.FilesIn(folder));

        // And a write that fails before the file existed leaves nothing.
        var fresh = Path.Combine(folder, "fresh.json");
        Assert.ThrowsExactly<IOException>(() => PretrainedModelFolder.WriteAtomically(fresh, new string('x', 10_000), FaultInjection.DiskFullAfter(100)));
        CollectionAssert.AreEqual(new[] { "config.json" }, FaultInjection.FilesIn(folder));
    }

    [TestMethod]
    public void ASafeTensorsWriteThatFailsPartWayLeavesThePreviousFileAndNoTemporaryFile()
    {
        using var scope = torch.NewDisposeScope();
        var path = Path.Combine(folder, CheckpointFiles.SafeTensorsName);
        SafeTensorsFile.Write(path, new Dictionary<string, torch.Tensor> { ["a"] = torch.ones(2) });
        var before = File.ReadAllBytes(path);

        Assert.ThrowsExactly<IOException>(() => SafeTensorsFile.Write(path, new Dictionary<string, torch.Tensor> { ["big"] = torch.zeros(100_000) },
            null, FaultInjection.DiskFullAfter(50_000)));

        CollectionAssert.AreEqual(before, File.ReadAllBytes(path));
        CollectionAssert.AreEqual(new[] { CheckpointFiles.SafeTensorsName }, FaultInjection.FilesIn(folder));
    }

    [TestMethod]
    public void OnAFullDiskEveryModelFileStaysWholeOrAbsent()
    {
        using var disk = SmallFileSystem.TryMount(kilobytes: 2048, out var reason);
        if (disk is null)
        {
            Assert.Inconclusive(reason);
            return;
        }

        // A pretrained model's folder as the export writes it: weights, tokenizer files, config.json.
        using var scope = torch.NewDisposeScope();
        var source = TestPaths.Fixtures("hf-tiny-lm", "bert");
        using var model = TransformerModels.LoadForLanguageModeling(source, out _);
        var tokenizer = TransformerTokenizer.FromFolder(source);
        var config = PretrainedModelFolder.ConfigJson(model.Config);
        var output = Path.Combine(disk.Folder, "model");
        PretrainedModelFolder.WriteModel(output, model, tokenizer, config);
        var before = Directory.GetFiles(output).ToDictionary(f => Path.GetFileName(f)!, File.ReadAllBytes);

        disk.Fill();
        Assert.ThrowsExactly<IOException>(() => PretrainedModelFolder.WriteModel(output, model, tokenizer, config));
        Assert.ThrowsExactly<IOException>(() => tokenizer.SaveTo(output));
        Assert.ThrowsExactly<IOException>(() => PretrainedModelFolder.WriteAtomically(Path.Combine(output, "config.json"), "{}"));
        Assert.ThrowsExactly<IOException>(() => SafeTensorsFile.Write(Path.Combine(output, "new.safetensors"), model.state_dict()));

        CollectionAssert.AreEquivalent(before.Keys, FaultInjection.FilesIn(output), "no temporary or partial file is left");
        foreach (var (name, bytes) in before)
        {
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(Path.Combine(output, name)), name);
        }
    }
}
