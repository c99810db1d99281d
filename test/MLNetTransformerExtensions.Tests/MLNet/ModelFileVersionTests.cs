using System.Buffers.Binary;
using System.IO.Compression;
using System.Reflection;
using Microsoft.ML;
using MLNetTransformerExtensions.Cli.Commands;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>A model file whose text classifier was written in a newer format version is refused, naming the version.</summary>
[TestClass]
public sealed class ModelFileVersionTests
{
    [TestMethod]
    public void AModelFileFromANewerFormatVersionIsRefusedNamingTheVersion()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(SentimentRows(20));
            using var model = BinaryEstimator(ml, new FakeNaiveBayesTrainer()).Fit(data);
            var path = Path.Combine(work, "model.zip");
            ml.Model.Save(model, data.Schema, path);
            Assert.IsNotNull(ml.Model.Load(path, out _), "the file as saved loads");

            // The header's model signature is followed by the version written and the oldest version that can read it.
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            {
                var entry = zip.Entries.Single(e => e.FullName.EndsWith("Model.key", StringComparison.Ordinal));
                var name = entry.FullName;
                using var buffer = new MemoryStream();
                using (var stream = entry.Open())
                {
                    stream.CopyTo(buffer);
                }

                var bytes = buffer.ToArray();
                var signature = bytes.AsSpan().IndexOf("TXTCLSFR"u8);
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(signature + 8), 0x00020001);
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(signature + 12), 0x00020001);
                entry.Delete();
                using var replaced = zip.CreateEntry(name).Open();
                replaced.Write(bytes);
            }

            // ML.NET calls the loader by reflection, so the loader's FormatException arrives wrapped.
            var error = Assert.ThrowsExactly<TargetInvocationException>(() => ml.Model.Load(path, out _));
            Assert.IsInstanceOfType<FormatException>(error.InnerException);
            StringAssert.Contains(error.InnerException.Message, "format version 0x00020001");
            StringAssert.Contains(error.InnerException.Message, "reads up to 0x00010002");

            // The CLI (evaluate, predict) says the same, unwrapped.
            var cli = Assert.ThrowsExactly<CliException>(() => ModelZip.Load(ml, path));
            StringAssert.Contains(cli.Message, $"'{path}' is not a readable model file (The text classifier in this model file is in format version 0x00020001");
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
