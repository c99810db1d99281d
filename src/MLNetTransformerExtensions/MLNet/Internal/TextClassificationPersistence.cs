using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Data.IO;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Training;

// Lets mlContext.Model.Load find Create below: the model file names this assembly and the loader signature.
[assembly: LoadableClass(typeof(TextClassificationTransformer), typeof(TextClassificationPersistence), null, typeof(SignatureLoadModel),
    "Text Classification Transformer", TextClassificationPersistence.LoaderSignature)]

namespace MLNetTransformerExtensions.MLNet.Internal;

/// <summary>
/// Saves a <see cref="TextClassificationTransformer"/> into an ML.NET model file and loads it back, with
/// ML.NET's internal persistence API (<see cref="ModelSaveContext"/>, <see cref="ModelLoadContext"/>).
/// </summary>
/// <remarks>
/// <para>Binary format of the transformer's main stream, version 0x00010002:</para>
/// <list type="number">
/// <item>int32: task, 0 = multiclass, 1 = binary</item>
/// <item>int32: string id of the text column name</item>
/// <item>int32: string id of the second text column name, or -1 for none</item>
/// <item>int32: string id of the label column name</item>
/// <item>int32: string id of the score column name</item>
/// <item>int32: string id of the predicted label column name</item>
/// <item>int32: string id of the probability column name, or -1 (multiclass)</item>
/// <item>int32: batch size (rows per model call when transforming)</item>
/// <item>int32: string id of the classifier's model format (for example "transformer")</item>
/// <item>int32: string id of the simple name of the assembly that declares the model format</item>
/// <item>int32: class count K</item>
/// <item>K × int32: string id of each class name, by class index</item>
/// <item>byte: 1 when the label's key values follow, else 0 (binary tasks, keys without values)</item>
/// <item>if 1: the key values' type and value in ML.NET's BinarySaver codec format (a <c>Vector&lt;T, K&gt;</c>)</item>
/// <item>int32: inference precision, 0 = float32, 1 = bfloat16 (<see cref="InferencePrecision"/>); absent in version
/// 0x00010001, which reads as float32</item>
/// </list>
/// <para>
/// String ids index the model's string table. The classifier's files are in the entry
/// <see cref="ClassifierEntry"/>, in the format <see cref="WriteFolder"/> describes.
/// </para>
/// </remarks>
internal static class TextClassificationPersistence
{
    /// <summary>Names the loader in the model header (at most 24 characters).</summary>
    internal const string LoaderSignature = "TextClassifierTransform";

    /// <summary>The zip entry, beside the main stream, that holds the classifier's folder.</summary>
    internal const string ClassifierEntry = "ClassifierFiles.bin";

    private const int FolderFormatVersion = 1;

    // Versions: 0x00010001 the initial format; 0x00010002 adds the inference precision (older code cannot read it).
    private const uint PrecisionVersion = 0x00010002;

    private static VersionInfo GetVersionInfo() => new(
        modelSignature: "TXTCLSFR",
        verWrittenCur: PrecisionVersion,
        verReadableCur: PrecisionVersion,
        verWeCanReadBack: 0x00010001,
        loaderAssemblyName: typeof(TextClassificationTransformer).Assembly.FullName,
        loaderSignature: LoaderSignature);

    public static void Save(TextClassificationTransformer transformer, ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel();
        ctx.SetVersionInfo(GetVersionInfo());

        var columns = transformer.Columns;
        ctx.Writer.Write((int)columns.Task);
        ctx.SaveNonEmptyString(columns.Text);
        ctx.SaveStringOrNull(columns.SecondText);
        ctx.SaveNonEmptyString(columns.Label);
        ctx.SaveNonEmptyString(columns.Score);
        ctx.SaveNonEmptyString(columns.PredictedLabel);
        ctx.SaveStringOrNull(columns.Probability);
        ctx.Writer.Write(transformer.BatchSize);
        ctx.SaveNonEmptyString(transformer.ModelFormat);
        ctx.SaveNonEmptyString(transformer.ModelFormatAssembly);

        var labels = transformer.Labels;
        ctx.Writer.Write(labels.ClassCount);
        foreach (var name in labels.ClassNames)
        {
            ctx.SaveString(name);
        }

        ctx.Writer.Write((byte)(labels.KeyValuesType is null ? 0 : 1));
        if (labels.KeyValuesType is not null)
        {
            KeyValueCodec.Write(transformer.Environment, ctx.Writer, labels.KeyValuesType, labels.KeyValues!);
        }

        ctx.Writer.Write((int)transformer.InferencePrecision);

        var folder = NewTemporaryFolder();
        try
        {
            transformer.Classifier.SaveTo(folder);
            ctx.SaveBinaryStream(ClassifierEntry, writer => WriteFolder(writer, folder));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // Called by ML.NET through the LoadableClass attribute above.
    private static TextClassificationTransformer Create(IHostEnvironment env, ModelLoadContext ctx)
    {
        ArgumentNullException.ThrowIfNull(env);
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.CheckAtModel();
        if (ctx.Header.ModelVerReadable > PrecisionVersion)
        {
            // ML.NET's own check would say only that the version is unsupported; say which, and what to do.
            throw new FormatException(FormattableString.Invariant(
                $"The text classifier in this model file is in format version 0x{ctx.Header.ModelVerReadable:X8}, written by a newer MLNetTransformerExtensions; this version reads up to 0x{PrecisionVersion:X8}. Load it with the version of the library that saved it, or a later one."));
        }

        ctx.CheckAtModel(GetVersionInfo());

        var task = (TextClassificationTask)ctx.Reader.ReadInt32();
        Decode(task is TextClassificationTask.Multiclass or TextClassificationTask.Binary, $"unknown task {(int)task}");
        var columns = new TextClassificationColumns(task,
            Text: ctx.LoadNonEmptyString(),
            SecondText: ctx.LoadStringOrNull(),
            Label: ctx.LoadNonEmptyString(),
            Score: ctx.LoadNonEmptyString(),
            PredictedLabel: ctx.LoadNonEmptyString(),
            Probability: ctx.LoadStringOrNull());
        Decode((columns.Probability is null) == (task == TextClassificationTask.Multiclass), "probability column does not match the task");
        var batchSize = ctx.Reader.ReadInt32();
        Decode(batchSize > 0, $"batch size {batchSize}");
        var format = ctx.LoadNonEmptyString();
        var formatAssembly = ctx.LoadNonEmptyString();

        var classCount = ctx.Reader.ReadInt32();
        Decode(classCount >= 2, $"class count {classCount}");
        var classNames = new string[classCount];
        for (var i = 0; i < classCount; i++)
        {
            classNames[i] = ctx.LoadString();
        }

        TextClassificationLabels labels;
        if (ctx.Reader.ReadByte() == 1)
        {
            var (type, values) = KeyValueCodec.Read(env, ctx.Reader);
            Decode(type.Size == classCount, $"{type.Size} key values for {classCount} classes");
            labels = TextClassificationLabels.FromKeyValues(classCount, type, values);
        }
        else
        {
            labels = task == TextClassificationTask.Binary ? TextClassificationLabels.Binary : TextClassificationLabels.FromKeyValues(classCount, null, null);
        }

        Decode(labels.ClassNames.SequenceEqual(classNames), "class names do not match the label's key values");

        var precision = InferencePrecision.Float32;
        if (ctx.Header.ModelVerWritten >= PrecisionVersion)
        {
            precision = (InferencePrecision)ctx.Reader.ReadInt32();
            Decode(Enum.IsDefined(precision), $"inference precision {(int)precision}");
        }

        var folder = NewTemporaryFolder();
        ITextClassificationModel classifier;
        try
        {
            Decode(ctx.TryLoadBinaryStream(ClassifierEntry, reader => ReadFolder(reader, folder)), $"the entry {ClassifierEntry} is missing");
            classifier = TextClassificationModelFormats.CreateLoader(format, formatAssembly).Load(folder);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }

        if (classifier.ClassCount != classCount)
        {
            classifier.Dispose();
            throw new FormatException($"The saved '{format}' classifier loaded with {classifier.ClassCount} classes; the model has {classCount}.");
        }

        var transformer = new TextClassificationTransformer(env, columns, batchSize, classifier, format, formatAssembly, labels);
        try
        {
            transformer.InferencePrecision = precision;
        }
        catch (NotSupportedException e)
        {
            transformer.Dispose();
            throw new FormatException($"The model file asks for {precision} scoring, which its '{format}' classifier does not support: {e.Message}", e);
        }

        return transformer;
    }

    /// <summary>
    /// Writes every file under <paramref name="folder"/>. Format, version 1:
    /// int32 format version (1); int32 file count; then per file, in ordinal order of path:
    /// string relative path with '/' separators (BinaryWriter: 7-bit length-prefixed UTF-8),
    /// int64 byte count, the bytes.
    /// </summary>
    internal static void WriteFolder(BinaryWriter writer, string folder)
    {
        var files = Directory.GetFiles(folder, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(folder, f).Replace(Path.DirectorySeparatorChar, '/'))
            .Order(StringComparer.Ordinal)
            .ToArray();
        writer.Write(FolderFormatVersion);
        writer.Write(files.Length);
        var buffer = new byte[1 << 16];
        foreach (var relative in files)
        {
            using var file = File.OpenRead(Path.Combine(folder, relative));
            writer.Write(relative);
            writer.Write(file.Length);
            int read;
            while ((read = file.Read(buffer)) > 0)
            {
                writer.Write(buffer, 0, read);
            }
        }
    }

    /// <summary>Restores the files <see cref="WriteFolder"/> wrote into <paramref name="folder"/>, refusing paths that leave it.</summary>
    internal static void ReadFolder(BinaryReader reader, string folder)
    {
        var version = reader.ReadInt32();
        Decode(version == FolderFormatVersion, $"classifier files in format version {version}; this library reads version {FolderFormatVersion}");
        var count = reader.ReadInt32();
        Decode(count >= 0, $"file count {count}");
        var root = Path.GetFullPath(folder) + Path.DirectorySeparatorChar;
        var buffer = new byte[1 << 16];
        for (var i = 0; i < count; i++)
        {
            var relative = reader.ReadString();
            var path = Path.GetFullPath(Path.Combine(root, relative));
            Decode(relative.Length > 0 && !Path.IsPathRooted(relative) && path.StartsWith(root, StringComparison.Ordinal) && !relative.Split('/').Contains(".."),
                $"file path '{relative}' is not inside the classifier's folder");
            var length = reader.ReadInt64();
            Decode(length >= 0, $"length {length} of '{relative}'");

            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var file = File.Create(path);
            while (length > 0)
            {
                var read = reader.Read(buffer, 0, (int)Math.Min(buffer.Length, length));
                Decode(read > 0, $"'{relative}' is cut short");
                file.Write(buffer, 0, read);
                length -= read;
            }
        }
    }

    internal static string NewTemporaryFolder()
    {
        var folder = Path.Combine(Path.GetTempPath(), "MLNetTransformerExtensions", "classifier-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        return folder;
    }

    private static void Decode(bool condition, string problem)
    {
        if (!condition)
        {
            throw new FormatException($"The text classifier in this model file is damaged or from an unknown version: {problem}.");
        }
    }

    /// <summary>Writes and reads a typed <c>VBuffer</c> value with ML.NET's own codecs, so key values of any type survive.</summary>
    private static class KeyValueCodec
    {
        public static void Write(IHostEnvironment env, BinaryWriter writer, VectorDataViewType type, object values)
        {
            writer.Flush();
            var method = typeof(KeyValueCodec).GetMethod(nameof(WriteTyped), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
            method.MakeGenericMethod(type.ItemType.RawType).Invoke(null, [env, writer.BaseStream, type, values]);
        }

        public static (VectorDataViewType Type, object Values) Read(IHostEnvironment env, BinaryReader reader)
        {
            var saver = new BinarySaver(env, new BinarySaver.Arguments());
            Decode(saver.TryLoadTypeAndValue(reader.BaseStream, out var type, out var values), "unreadable label key values");
            Decode(type is VectorDataViewType && values is not null, $"label key values of type {type}");
            return ((VectorDataViewType)type, values!);
        }

        private static void WriteTyped<T>(IHostEnvironment env, Stream stream, VectorDataViewType type, object values)
        {
            var saver = new BinarySaver(env, new BinarySaver.Arguments());
            var buffer = (VBuffer<T>)values;
            if (!saver.TryWriteTypeAndValue(stream, type, ref buffer, out _))
            {
                throw new InvalidOperationException($"ML.NET cannot save label key values of type {type.ItemType}; map the label from text or numbers.");
            }
        }
    }
}
