// Native tests of the pure C++ parts: tensor data from bytes, the JSON reader, the
// safetensors reader/writer, the restricted unpickler, and that at::parallel_for in our code
// runs on several threads. Prints one line per failure and ends with "native: N passed, N
// failed"; exits non-zero when anything failed.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/channel_argmax.h"
#include "core/cpu_allocator.h"
#include "core/json.h"
#include "core/pickle.h"
#include "core/safetensors.h"
#include "core/tensor_data.h"
#include "core/voc_data.h"

namespace {

int passed = 0, failed = 0;

void check(bool ok, const std::string& name) {
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::cout << "not ok - " << name << "\n";
  }
}

/// True when fn throws and the message contains needle.
bool throwsWith(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
  } catch (const std::exception& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return true;
    std::cout << "# message was: " << e.what() << "\n";
    return false;
  }
  return false;
}

/// Bytes from hex text (pickles written out by Python's pickle module).
std::string fromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

std::string tempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("fcn-native-" + name)).string();
}

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string safetensorsFile(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out + header + data;
}

void tensorDataTests() {
  float values[6] = {1, 2, 3, 4, 5, 6};
  at::Tensor t = fcn::tensorFromBytes(values, sizeof values, at::kFloat, {2, 3});
  check(t.sizes() == at::IntArrayRef({2, 3}) && t[1][2].item<float>() == 6.0f, "tensorFromBytes copies values");
  values[0] = 100;
  check(t[0][0].item<float>() == 1.0f, "tensorFromBytes does not alias the source");
  check(throwsWith(
            [&] {
              fcn::tensorFromBytes(values, sizeof values, at::kFloat, {4, 2});
            },
            "needs 8"),
        "tensorFromBytes refuses a shape of another size");
  check(throwsWith(
            [&] {
              fcn::tensorFromBytes(values, sizeof values, at::kFloat, {-1, 6});
            },
            "must be >= 0"),
        "tensorFromBytes refuses negative sizes");
  check(throwsWith([&] { fcn::checkedNumel({1LL << 40, 1LL << 40}); }, "int64"), "checkedNumel catches overflow");
  int32_t ints[4] = {};
  fcn::copyTensorBytes(at::arange(4, at::kInt).reshape({2, 2}).t(), ints, sizeof ints);
  check(ints[1] == 2 && ints[2] == 1, "copyTensorBytes lays out non-contiguous views row-major");
  check(throwsWith([&] { fcn::copyTensorBytes(at::zeros({3}, at::kInt), ints, sizeof ints); }, "holds 16 bytes"),
        "copyTensorBytes refuses a destination of another size");
}

void jsonTests() {
  auto v = fcn::json::parse(R"({"a": [1, -2, 3], "b": "x\"\u00e9", "c": {"d": true, "e": null}})");
  check(v.members.size() == 3 && v.members[0].value.items[1].integer == -2, "json parses arrays of integers");
  check(v.members[1].value.string == "x\"\xc3\xa9", "json decodes escapes to UTF-8");
  check(throwsWith([] { fcn::json::parse("{\"a\": 1.5}"); }, "only integers"), "json refuses floats");
  check(throwsWith([] { fcn::json::parse("{\"a\": 1"); }, "unexpected end"), "json refuses truncated text");
  check(throwsWith([] { fcn::json::parse(std::string(100, '[')); }, "deeply"), "json limits nesting");
  check(throwsWith([] { fcn::json::parse("{\"a\": 99999999999999999999}"); }, "out of range"),
        "json refuses integers past int64");
  check(fcn::json::quote("a\"b\n") == "\"a\\\"b\\u000a\"", "json quotes strings");
}

void safetensorsTests() {
  using fcn::safetensors::parseHeader;
  auto h = parseHeader(R"({"b":{"dtype":"I64","shape":[1],"data_offsets":[8,16]},)"
                       R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":{"format":"pt"}})",
                       16);
  check(h.entries.size() == 2 && h.entries[0].name == "a" && h.metadata["format"] == "pt",
        "safetensors header parses, ordered by offset");
  check(throwsWith([] { parseHeader(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8); }, "span 8"),
        "safetensors refuses a shape that does not match its bytes");
  check(throwsWith([] { parseHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4); }, "outside"),
        "safetensors refuses offsets past the data");
  check(throwsWith(
            [] {
              parseHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                          R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                          8);
            },
            "overlaps"),
        "safetensors refuses overlapping tensors");
  check(throwsWith([] { parseHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8); }, "hole"),
        "safetensors refuses holes");
  check(throwsWith([] { parseHeader(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", 1); }, "Q7"),
        "safetensors names an unknown dtype");
  check(throwsWith([] { parseHeader(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", 0); }, "size"),
        "safetensors refuses negative sizes");

  std::string path = tempPath("roundtrip.safetensors");
  fcn::NamedTensors tensors = {{"w", at::arange(6, at::kFloat).reshape({2, 3}).t()}, {"n", at::tensor({7}, at::kLong)}};
  fcn::safetensors::write(path, tensors, {{"format", "pt"}});
  auto file = fcn::safetensors::read(path);
  const auto& back = file.tensors;
  check(back.size() == 2 && back[0].first == "w" && at::equal(back[0].second, tensors[0].second) &&
            at::equal(back[1].second, tensors[1].second) && file.metadata.at("format") == "pt",
        "safetensors write then read gives the same tensors and metadata");
  writeBytes(path, safetensorsFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "1234"));
  check(throwsWith([&] { fcn::safetensors::read(path); }, "outside"), "safetensors refuses a truncated file");
  writeBytes(path, fromHex("ffffffffffffff7f7b7d"));
  check(throwsWith([&] { fcn::safetensors::read(path); }, "header"), "safetensors refuses a huge declared header");
  std::filesystem::remove(path);
}

/// A pickle's bytes, the unpickler that read them and what it read (values stay whole while
/// their unpickler lives).
struct Unpickled {
  std::string bytes;
  std::unique_ptr<fcn::pickle::Unpickler> unpickler;
  fcn::pickle::Ref value;
  const fcn::pickle::Ref& operator->() const { return value; }
};

Unpickled unpickle(const std::string& bytes) {
  Unpickled out{bytes, nullptr, nullptr};
  out.unpickler = std::make_unique<fcn::pickle::Unpickler>(reinterpret_cast<const uint8_t*>(out.bytes.data()),
                                                           out.bytes.size(), nullptr);
  out.value = out.unpickler->load();
  return out;
}

void pickleTests() {
  using fcn::pickle::Value;
  // pickle.dumps({'a': 1, 'b': [2, 3]}, protocol=2)
  std::string dict = fromHex("80027d71002858010000006171014b0158010000006271025d7103284b024b0365752e");
  auto v = unpickle(dict);
  check(v->kind == Value::Kind::Dict && v->items.size() == 4 && v->items[1]->integer == 1 &&
            v->items[3]->items.size() == 2 && v->items[3]->items[1]->integer == 3,
        "unpickler reads a protocol-2 dict with a list");
  // pickle.dumps(os.system) style: cposix\nsystem\n(S'echo'\ntR.
  std::string evil = fromHex("800263706f7369780a73797374656d0a710058040000006563686f71018571025271032e");
  check(throwsWith([&] { unpickle(evil); }, "refusing global 'posix.system'"), "unpickler refuses os.system");
  std::string builtinsEval = fromHex("8002636275696c74696e730a6576616c0a58010000003185522e");
  check(throwsWith([&] { unpickle(builtinsEval); }, "refusing global 'builtins.eval'"), "unpickler refuses eval");
  check(throwsWith([&] { unpickle(dict.substr(0, 20)); }, "ends in the middle"), "unpickler refuses truncated data");
  check(throwsWith([] { unpickle(fromHex("800268052e")); }, "missing entry"),
        "unpickler refuses a lookup of an unset memo entry");
  check(throwsWith([] { unpickle(fromHex("8002692e")); }, "not allowed"), "unpickler refuses INST");
  check(throwsWith([] { unpickle(fromHex("800258ffffff7f2e")); }, "ends in the middle"),
        "unpickler refuses a string longer than the data");
  check(throwsWith([] { unpickle(fromHex("8002612e")); }, "underflow"), "unpickler refuses stack underflow");
  // A tensor record whose size reaches past its storage.
  fcn::pickle::PersistentLoad storage = [](const fcn::pickle::Ref&) {
    auto s = std::make_shared<Value>();
    s->kind = Value::Kind::Storage;
    s->tensor = at::zeros({4});
    return s;
  };
  std::string rebuild = fromHex(
      "800263746f7263682e5f7574696c730a5f72656275696c645f74656e736f725f76320a2858010000006b514b004b05854b0185894e74522"
      "e");
  fcn::pickle::Unpickler u(reinterpret_cast<const uint8_t*>(rebuild.data()), rebuild.size(), storage);
  check(throwsWith([&] { u.load(); }, "reaches past the end"), "unpickler refuses a tensor larger than its storage");
}

void vocTests() {
  // A 2x2 label: background, aeroplane; boundary, person.
  at::Tensor rgb = at::tensor({0, 0, 0, 128, 0, 0, 224, 224, 192, 192, 128, 128}, at::kByte).reshape({2, 2, 3});
  at::Tensor ids = fcn::voc::labelIndices(rgb);
  check(ids.dtype() == at::kByte && ids[0][1].item<int>() == 1 && ids[1][0].item<int>() == 255 &&
            ids[1][1].item<int>() == 15,
        "labelIndices maps palette colours to class ids and the boundary to 255");
  at::Tensor odd = rgb.clone();
  odd[1][1][2] = 7;
  check(throwsWith([&] { fcn::voc::labelIndices(odd); }, "colour (192, 128, 7) at row 1, column 1"),
        "labelIndices names a colour outside the palette and where it is");
  check(throwsWith(
            [&] {
              fcn::voc::labelIndices(at::zeros({2, 2}, at::kByte));
            },
            "uint8 [H, W, 3]"),
        "labelIndices refuses a tensor that is not an RGB image");

  // An indexed PNG's rows, each filtered differently (Sub, Paeth, Average, Up), of indices
  // [1 0 1] [0 1 2] [1 1 0] [2 0 0] into a palette of black, aeroplane, boundary, (1, 2, 3).
  // (Row 3 is Up-filtered: its stored first byte is the index less the 1 above it.)
  at::Tensor palette = at::tensor({0, 0, 0, 128, 0, 0, 224, 224, 192, 1, 2, 3}, at::kByte).reshape({4, 3});
  at::Tensor rows = at::tensor({1, 1, 255, 1, 4, 255, 1, 1, 3, 1, 0, 255, 2, 1, 255, 0}, at::kByte);
  at::Tensor fromPng = fcn::voc::paletteLabelIndices(rows, 4, 3, palette);
  check(at::equal(fromPng, at::tensor({1, 0, 1, 0, 1, 255, 1, 1, 0, 255, 0, 0}, at::kByte).reshape({4, 3})),
        "paletteLabelIndices reverses each PNG filter and maps indices to class ids");
  auto withByte = [&](int64_t at, int value) {
    at::Tensor changed = rows.clone();
    changed[at] = value;
    return changed;
  };
  check(
      throwsWith([&] { fcn::voc::paletteLabelIndices(withByte(4, 5), 4, 3, palette); }, "row 1 has PNG filter type 5"),
      "paletteLabelIndices refuses an unknown filter type");
  check(throwsWith([&] { fcn::voc::paletteLabelIndices(withByte(13, 2), 4, 3, palette); },
                   "colour (1, 2, 3) at row 3, column 0 is not in the VOC palette"),
        "paletteLabelIndices names a colour outside the VOC palette and where it is");
  check(throwsWith([&] { fcn::voc::paletteLabelIndices(withByte(13, 8), 4, 3, palette); },
                   "palette index 9 at row 3, column 0 is past the palette's 4 colours"),
        "paletteLabelIndices refuses an index past the palette");
  check(throwsWith([&] { fcn::voc::paletteLabelIndices(rows, 5, 3, palette); }, "5 rows of 3 pixels take 20"),
        "paletteLabelIndices refuses image data of the wrong length");

  at::Tensor image = at::arange(4 * 5 * 3, at::kByte).reshape({4, 5, 3});
  at::Tensor label = at::arange(20, at::kByte).reshape({4, 5});
  auto [X, Y] = fcn::voc::cropBatch({image}, {label}, {{1, 2}}, 2, 3, {0.5, 0.25, 0.0}, {0.5, 1.0, 2.0});
  float expected = (image[1][2][1].item<float>() / 255.0f - 0.25f) / 1.0f;
  check(X.sizes() == at::IntArrayRef({1, 3, 2, 3}) && std::abs(X[0][1][0][0].item<float>() - expected) < 1e-6f,
        "cropBatch crops the window and normalises per channel");
  check(Y.dtype() == at::kLong && Y[0][1][2].item<int64_t>() == label[2][4].item<int64_t>(),
        "cropBatch crops the label with the same window, as int64");
  check(throwsWith(
            [&] {
              fcn::voc::cropBatch({image}, {label}, {{3, 0}}, 2, 3, {0, 0, 0}, {1, 1, 1});
            },
            "outside"),
        "cropBatch refuses a window outside the image");

  // A 4x5 image in a 6x7 crop: padded at the bottom and right with pixel 0, labelled ignore.
  at::Tensor wide = at::arange(20, at::kInt).reshape({4, 5}) * 1000;
  auto [padX, padY] = fcn::voc::cropBatch({image}, {wide}, {{0, 0}}, 6, 7, {0.5, 0.5, 0.5}, {1, 1, 1}, 65535);
  check(padY[0][3][4].item<int64_t>() == 19000 && padY[0][4][0].item<int64_t>() == 65535 &&
            padY[0][0][5].item<int64_t>() == 65535 && std::abs(padX[0][2][5][6].item<float>() + 0.5f) < 1e-6f,
        "cropBatch pads an image smaller than the crop with 0 labelled ignore, and takes int32 labels");
  auto [flipX, flipY] = fcn::voc::cropBatch({image}, {label}, {{1, 2, true}}, 2, 3, {0, 0, 0}, {1, 1, 1});
  check(flipY[0][0][0].item<int64_t>() == label[1][4].item<int64_t>() &&
            flipY[0][1][2].item<int64_t>() == label[2][2].item<int64_t>() &&
            std::abs(flipX[0][0][0][0].item<float>() - image[1][4][0].item<float>() / 255.0f) < 1e-6f,
        "cropBatch mirrors a flipped window left to right, image and label alike");
  check(throwsWith(
            [&] {
              fcn::voc::cropBatch({image}, {label}, {{0, 0}}, 6, 7, {0, 0, 0}, {1, 1, 1});
              fcn::voc::cropBatch({image}, {label}, {{1, 0}}, 6, 7, {0, 0, 0}, {1, 1, 1});
            },
            "outside"),
        "cropBatch refuses a window past the padded image");

  // Resized first (2x up, and down to 3/5), then cropped, flipped or not: PyTorch's bilinear
  // interpolation of the image and nearest-exact of the labels, then the same window.
  at::Tensor photo = at::randint(0, 256, {10, 15, 3}, at::kByte);
  at::Tensor classIds = at::randint(0, 21, {10, 15}, at::kByte);
  for (auto [height, width, flip] : {std::tuple{20, 30, false}, std::tuple{6, 9, true}}) {
    auto [rx, ry] =
        fcn::voc::cropBatch({photo}, {classIds}, {{1, 2, flip, height, width}}, 5, 7, {0.5, 0.4, 0.3}, {0.2, 0.3, 0.4});
    at::Tensor chw = photo.permute({2, 0, 1}).unsqueeze(0).to(at::kFloat) / 255.0;
    at::Tensor big = at::upsample_bilinear2d(chw, {height, width}, false).squeeze(0);
    big = (big - at::tensor({0.5, 0.4, 0.3}).view({3, 1, 1})) / at::tensor({0.2, 0.3, 0.4}).view({3, 1, 1});
    at::Tensor labels =
        at::_upsample_nearest_exact2d(classIds.unsqueeze(0).unsqueeze(0).to(at::kFloat), {height, width});
    at::Tensor wantX = big.narrow(1, 1, 5).narrow(2, 2, 7);
    at::Tensor wantY = labels.squeeze(0).squeeze(0).narrow(0, 1, 5).narrow(1, 2, 7).to(at::kLong);
    if (flip) {
      wantX = wantX.flip({2});
      wantY = wantY.flip({1});
    }
    check((rx[0] - wantX).abs().max().item<float>() < 1e-4f && at::equal(ry[0], wantY),
          "cropBatch resizes as PyTorch's bilinear and nearest-exact interpolation before the crop");
  }
}

void channelArgmaxTests() {
  // Scores with many ties (small integers), a few NaNs, and a plane (37 x 1100) that is no
  // multiple of the kernel's block: the labels must be at::argmax's, index for index.
  at::manual_seed(3);
  at::Tensor scores = at::randint(0, 4, {2, 21, 37, 1100}, at::kFloat);
  scores.view(-1).index_put_({at::randint(0, scores.numel(), {500}, at::kLong)}, NAN);
  at::Tensor labels = fcn::channelArgmax(scores);
  check(labels.scalar_type() == at::kLong && at::equal(labels, scores.argmax(1)),
        "channelArgmax gives at::argmax(x, 1): first of equal maxima, NaN above numbers");
  at::Tensor strided = scores.permute({0, 1, 3, 2});
  check(at::equal(fcn::channelArgmax(strided), strided.argmax(1)), "channelArgmax of non-contiguous scores");
  check(at::equal(fcn::channelArgmax(scores.to(at::kDouble)), scores.argmax(1)), "channelArgmax of float64 scores");

  // argmaxHits against at::argmax on the same scores (ties, NaNs), channels-first and
  // channels-last, with ignored (255) and out-of-range (-1, 21) labels among the classes.
  at::Tensor truth = at::randint(0, 21, {2, 37, 1100}, at::kLong);
  truth.view(-1).index_put_({at::randint(0, truth.numel(), {3000}, at::kLong)}, 255);
  truth.view(-1).index_put_({at::randint(0, truth.numel(), {50}, at::kLong)}, -1);
  truth.view(-1).index_put_({at::randint(0, truth.numel(), {50}, at::kLong)}, 21);
  // Pixels whose label is their argmax, so that hits are many and NaN labels are among them.
  at::Tensor argmax = scores.argmax(1);
  at::Tensor right = at::rand({2, 37, 1100}) < 0.5;
  truth = at::where(right & (truth != 255), argmax, truth);
  for (const at::Tensor& layout : {scores, scores.contiguous(at::MemoryFormat::ChannelsLast),
                                   scores.transpose(2, 3).contiguous().transpose(2, 3)}) {
    fcn::ArgmaxHits hits = fcn::argmaxHits(layout, truth, 255);
    at::Tensor labelled = truth != 255;
    check(hits.hits.item<int64_t>() == ((layout.argmax(1) == truth) & labelled).sum().item<int64_t>() &&
              hits.labelled.item<int64_t>() == labelled.sum().item<int64_t>() && hits.hits.item<int64_t>() > 10000,
          "argmaxHits counts the labelled pixels whose label is at::argmax's, in every memory layout");
  }
  check(throwsWith([&] { fcn::argmaxHits(scores, truth.narrow(1, 0, 5), 255); }, "expected"),
        "argmaxHits refuses labels that do not fit the scores");
}

void cpuAllocatorTests() {
  constexpr int64_t MiB = int64_t{1} << 20;
  fcn::installCachingCpuAllocator();
  fcn::releaseCachedCpuMemory();  // empty, and the most in use is what is in use now
  const int64_t base = fcn::cpuBytesInUse();
  auto cachedMiB = [] { return static_cast<double>(fcn::cachedCpuBytes()) / MiB; };
  {
    std::vector<at::Tensor> blocks;
    for (int i = 0; i < 4; ++i) blocks.push_back(at::empty({MiB}, at::kByte));
    check(fcn::cpuBytesInUse() - base == 4 * MiB, "the allocator counts the bytes in use");
  }
  check(cachedMiB() == 4, "freed blocks of 1 MiB are cached");
  at::Tensor again = at::empty({MiB}, at::kByte);
  check(cachedMiB() == 3, "a block of a cached size is handed out again");
  {
    fcn::PeakBound bound;  // as in a training step
    at::Tensor larger = at::empty({2 * MiB}, at::kByte);
    const int64_t most = base + 4 * MiB, held = fcn::cpuBytesInUse() + static_cast<int64_t>(fcn::cachedCpuBytes());
    check(cachedMiB() < 3 && held <= most + most / 4,
          "under a PeakBound a fresh block first gives up cached ones (in use + cached within 1.25x the peak)");
    at::Tensor largest = at::empty({16 * MiB}, at::kByte);
    check(cachedMiB() == 0, "under a PeakBound a block larger than the peak empties the cache");
  }
  check(cachedMiB() == 18, "blocks freed under a PeakBound are cached");
  at::Tensor unbound = at::empty({20 * MiB}, at::kByte);
  check(cachedMiB() == 18, "outside a PeakBound (inference) a fresh block evicts nothing");
  again.reset();
  unbound.reset();
  check(cachedMiB() == 39, "every freed block is cached");
  fcn::releaseCachedCpuMemory();
  check(cachedMiB() == 0 && fcn::cpuBytesInUse() == base, "releaseCachedCpuMemory empties the cache");
  at::empty({4 * MiB}, at::kByte).reset();
  {
    at::Tensor smaller = at::empty({3 * MiB}, at::kByte);
    check(cachedMiB() == 0 && fcn::cpuBytesInUse() - base == 4 * MiB,
          "a cached block serves a smaller tensor, counted whole");
    at::Tensor tiny = at::empty({MiB}, at::kByte);
    smaller.reset();
    at::Tensor quarter = at::empty({MiB}, at::kByte);
    check(cachedMiB() == 4, "but not one under half its size");
  }
  fcn::releaseCachedCpuMemory();
}

/// at::parallel_for's OpenMP pragma compiles into our own code (batch crops, argmax, the
/// sub-pixel shuffle): built without -fopenmp it ran everything on the calling thread.
void parallelForTests() {
  int previous = at::get_num_threads();
  // 3 rather than CI's 2 cores: a second OpenMP runtime's team would be the core count.
  at::set_num_threads(3);
  std::mutex mutex;
  std::set<std::thread::id> threads;
  at::parallel_for(0, 64, 1, [&](int64_t, int64_t) {
    std::lock_guard<std::mutex> lock(mutex);
    threads.insert(std::this_thread::get_id());
  });
  at::set_num_threads(previous);
  check(threads.size() == 3, "at::parallel_for in our code splits the work over the 3 threads it is given");
}

}  // namespace

int main() {
  cpuAllocatorTests();
  tensorDataTests();
  jsonTests();
  safetensorsTests();
  pickleTests();
  vocTests();
  channelArgmaxTests();
  parallelForTests();
  std::cout << "native: " << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}
